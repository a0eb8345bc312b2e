"""Ingestion of real exports (KoboToolbox, ODK Central, DHIS2, canonical files) into the data model.

Submodules are imported on use (``from clm_research.ingest.staging import stage_country``); the pipeline that runs staging, the gate and the writes is :mod:`clm_research.pipeline`.
"""

__all__: list[str] = []
