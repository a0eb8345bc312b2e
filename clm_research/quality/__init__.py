"""The data-quality gate (Great Expectations suites, quarantine) and the WHO DQR routine checks.

Submodules are imported on use; Great Expectations itself only when the gate runs it.
"""

__all__: list[str] = []
