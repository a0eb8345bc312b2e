"""clm_research: measure whether community-led monitoring (CLM) improves HIV services and outcomes.

The public names below are imported on first use, so ``import clm_research`` is instant; heavy
libraries (Great Expectations, statsmodels, geopandas, seaborn) load only inside the functions
that use them.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# No usage analytics leave the machine: Great Expectations reads this when it is imported.
os.environ["GX_ANALYTICS_ENABLED"] = "false"

__version__ = "0.1.0"

_EXPORTS = {
    "load_framework": "clm_research.framework",
    "Framework": "clm_research.framework",
    "Indicator": "clm_research.framework",
    "compute_indicators": "clm_research.indicators",
    "protect_tables": "clm_research.disclosure",
    "audit_tables": "clm_research.disclosure",
    "read_country": "clm_research.tables",
    "load_country": "clm_research.config.country",
    "list_countries": "clm_research.config.country",
    "generate_country": "clm_research.demo",
    "write_demo": "clm_research.demo",
    "TABLES": "clm_research.schema",
    "CLMError": "clm_research.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clm_research' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
