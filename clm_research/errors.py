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
    "DesignInputError",
    "DisclosureError",
    "LockError",
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


class DesignInputError(CLMError, ValueError):
    """A study-design input is wrong: a facility list, a planning number, an analysis plan draft.

    Also a :class:`ValueError`, because the design functions take numbers: callers that catch
    ``ValueError`` for an impossible number (a proportion of 1.3) keep working.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython shows what this returns instead of a traceback: a workshop participant sees
        # the sentence that says what to change, not the library's internals.
        return [f"{type(self).__name__}: {self}"]


class DisclosureError(CLMError):
    """Published tables would let an attacker work out a suppressed cell; nothing is published.

    ``audit`` holds the :class:`~clm_research.disclosure.DisclosureAudit` that failed, when
    there is one.
    """

    def __init__(self, message: str, audit: object | None = None) -> None:
        super().__init__(message)
        self.audit = audit


class LockError(CLMError):
    """Another run of the same country is in progress (it holds the country's lock)."""
