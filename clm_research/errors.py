"""The exception tree: every error a user can cause derives from :class:`CLMError`.

The CLI prints the message of a :class:`CLMError` without a traceback and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "CLMError",
    "FrameworkError",
    "ParamsError",
    "DataQualityError",
    "IngestError",
    "OutputError",
]


class CLMError(Exception):
    """Base class: a problem with the user's input or set-up, explained in the message."""


class FrameworkError(CLMError):
    """The measurement framework (``params/framework.yaml`` or a country's changes) is wrong."""


class ParamsError(CLMError):
    """A parameters file (``params/countries/<code>.yaml``, a plan) is wrong."""


class DataQualityError(CLMError):
    """A table-level data-quality failure: missing column, wrong file, empty file, encoding."""


class IngestError(CLMError):
    """An export cannot be read or mapped to the canonical model."""


class OutputError(CLMError):
    """An output could not be written (disk full, read-only folder, permissions); nothing changed."""
