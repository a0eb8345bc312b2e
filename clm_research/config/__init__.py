"""Configuration read from ``params/``: one YAML loader and the country parameters.

:mod:`clm_research.config.loader` reads every YAML file the project reads (country parameters,
the framework, mappings, analysis plans) with the same limits and the same error format;
:mod:`clm_research.config.country` is the typed model of ``params/countries/<code>.yaml``.
"""

from __future__ import annotations

from clm_research.config.country import (
    CountryParams,
    NotebookParameters,
    SynthesisParameters,
    list_countries,
    load_country,
    notebook_parameters,
)
from clm_research.config.loader import (
    format_validation_error,
    load_model,
    read_yaml,
    read_yaml_mapping,
    validate_model,
)

__all__ = [
    "CountryParams",
    "NotebookParameters",
    "SynthesisParameters",
    "list_countries",
    "load_country",
    "notebook_parameters",
    "format_validation_error",
    "load_model",
    "read_yaml",
    "read_yaml_mapping",
    "validate_model",
]
