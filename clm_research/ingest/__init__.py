"""Ingestion of real exports (KoboToolbox, ODK Central, DHIS2, canonical files) into the data model.

Submodules are imported on use (``from clm_research.ingest.pipeline import ingest_country``).
"""

__all__: list[str] = []
