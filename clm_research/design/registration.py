"""Drafting and registering an analysis plan from a workshop: nothing registered is overwritten.

A participant writing their plan in ``05_analysis_plan`` works on a **draft** in their own
folder, ``params/plans/drafts/`` (ignored by git, rewritten as often as they like). Only when
they decide to register it is the plan written to ``params/plans/<study_id>.yaml``, the folder
the evaluation reports read, and a registered plan is never overwritten: a change after
registration is a deviation, reported as such (:func:`clm_research.plans.check_deviations`).

The registration date is the day the plan is written; a date in the past is accepted only with
a written reason (e.g. "fixed on paper at the 12 March meeting, typed in later"), which is kept
in the plan, so a plan cannot quietly look older than it is.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from clm_research.errors import DesignInputError
from clm_research.plans import AnalysisPlan, plans_dir, write_plan

__all__ = ["drafts_dir", "build_plan", "save_plan"]


def drafts_dir() -> Path:
    """``params/plans/drafts/``: a workshop participant's plan drafts (not tracked by git)."""
    return plans_dir() / "drafts"


def _problem(e: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in e.get("loc", ()))
    msg = str(e.get("msg", "")).removeprefix("Value error, ")
    if e.get("type") == "extra_forbidden":
        msg = "is not a field of an analysis plan (misspelt?)"
    elif e.get("type") == "missing":
        msg = "is required"
    return f"{field} {msg}" if field else msg


def build_plan(**fields: Any) -> AnalysisPlan:
    """Build an :class:`~clm_research.plans.AnalysisPlan`, with any problem as one sentence.

    Raises
    ------
    DesignInputError
        "The analysis plan is not valid: …", naming each field and its rule.

    Examples
    --------
    >>> build_plan(study_id="x", question="Does CLM shorten waiting times?", design="its",
    ...            primary_indicator="wait_time_median", comparison_group="not_yet_monitored",
    ...            first_round="2023Q1", last_round="2024Q4", estimator="its",
    ...            model="segmented regression",
    ...            minimum_detectable_effect=-10, countries=("XA",))
    Traceback (most recent call last):
    ...
    clm_research.errors.DesignInputError: The analysis plan is not valid: design 'its' cannot use comparison_group 'not_yet_monitored'.
    """
    from pydantic import ValidationError

    try:
        return AnalysisPlan(**fields)
    except ValidationError as err:
        problems = "; ".join(_problem(dict(e)) for e in err.errors())
        raise DesignInputError(f"The analysis plan is not valid: {problems}.") from None


def save_plan(
    plan: AnalysisPlan,
    *,
    register: bool = False,
    directory: str | Path | None = None,
    today: date | None = None,
) -> tuple[AnalysisPlan, Path]:
    """Write a plan as a draft (default) or register it, after the registration checks.

    Parameters
    ----------
    plan
        The plan. ``registered_on`` empty means today.
    register
        ``False``: write ``<directory>/<study_id>.yaml`` with ``directory`` defaulting to
        :func:`drafts_dir` (a draft may be rewritten). ``True``: write to ``directory``
        defaulting to ``params/plans/``, refusing if a plan of that study is already there.
    directory
        Folder to write to (tests and other projects).
    today
        The day of writing (default: the computer's date).

    Returns
    -------
    (AnalysisPlan, pathlib.Path)
        The plan as written (with its registration date) and the file.

    Raises
    ------
    DesignInputError
        When ``registered_on`` is in the future, or in the past without
        ``registered_on_reason``, or when registering would overwrite a registered plan.
    """
    today = today or date.today()
    if plan.registered_on is None:
        plan = plan.model_copy(update={"registered_on": today})
    assert plan.registered_on is not None
    if plan.registered_on > today:
        raise DesignInputError(
            f"registered_on {plan.registered_on} is after today ({today}): a plan is "
            "registered on the day it is fixed, never ahead of it."
        )
    if plan.registered_on < today and not plan.registered_on_reason.strip():
        raise DesignInputError(
            f"registered_on {plan.registered_on} is before today ({today}): leave it empty to "
            "register the plan today, or say in registered_on_reason why the plan was fixed "
            "on that earlier date (for example, agreed on paper at a meeting)."
        )
    if register:
        folder = Path(directory) if directory is not None else plans_dir()
        target = folder / f"{plan.study_id}.yaml"
        if target.exists():
            raise DesignInputError(
                f"a plan is already registered as {target}: a registered plan is never "
                "overwritten; choose another study_id, or run the registered plan and report "
                "what changed as deviations."
            )
    else:
        folder = Path(directory) if directory is not None else drafts_dir()
        target = folder / f"{plan.study_id}.yaml"
    path = write_plan(plan, target)
    if not register:
        path.write_text(
            "# DRAFT, not registered: the evaluation reports do not read it. Register it from\n"
            "# notebooks/study_design/05_analysis_plan (register = True) once it is final.\n"
            + path.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
    return plan, path
