"""The pre-registered analysis, run exactly as planned, with every deviation listed.

A country's parameters may name an analysis plan (``plan: params/plans/<study>.yaml``, written
by the study-design notebook ``05_analysis_plan``). :func:`run_plan` runs *its* design,
indicators, comparison group, time window, estimator and alpha on the country's tables; anything
the run could not do as planned (an indicator without a comparison design, a window the data do
not cover, a country the plan does not cover) becomes a deviation, found by comparing what was
actually run with the plan (:func:`clm_research.plans.check_deviations`).

The plan names its estimator as a field (:data:`clm_research.plans.ESTIMATORS`), validated when
the plan is loaded; the plan's ``model`` text is a description for readers and is never parsed.

========================  =====================================================================
``callaway_santanna``     Callaway & Sant'Anna (2021) difference-in-differences on facility ×
                          round panels (monthly for routine indicators), errors clustered by
                          facility; not-yet- or never-monitored comparisons as the plan says.
``twfe``, ``event_study`` Two-way fixed effects (facility and period), or its event-study form;
                          errors clustered by facility. For a stepped wedge this is Hussey &
                          Hughes' model with fixed facility and period effects.
``gee``                   Client-level GEE of an interview indicator (exchangeable correlation
                          within facility, Mancl–DeRouen errors, round and CLM-facility terms).
``its``                   Segmented regression of the first CLM wave's aggregated series (level
``controlled_its``        and slope change at its start), against the never-monitored
                          facilities' series for ``controlled_its``; quasi-Poisson with the
                          denominator as offset for counts, OLS with Newey–West errors for means.
``pre_post``              Facility-level change from the first to the last round at CLM
                          facilities (one-sample t), or CLM minus comparison change (Welch).
``two_group``             CLM minus randomised control facility means in the last round (Welch).
========================  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from clm_research.config.loader import validate_model
from clm_research.errors import CLMError, ParamsError
from clm_research.evaluation._results import EvaluationError, EvaluationResult
from clm_research.periods import months_to_rounds
from clm_research.plans import ESTIMATORS, AnalysisPlan, check_deviations, load_plan

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

    from clm_research.evaluation.chain import ChainResult
    from clm_research.framework import Framework

__all__ = [
    "CHANGEABLE",
    "IndicatorResult",
    "PlannedAnalysis",
    "country_plan",
    "run_plan",
]

CHANGEABLE = (
    "design",
    "primary_indicator",
    "secondary_indicators",
    "comparison_group",
    "chain_links",
    "first_round",
    "last_round",
    "estimator",
    "its_family",
    "harmonics",
    "model",
    "alpha",
)


_CONTROL: dict[str, Literal["not_yet_treated", "never_treated"]] = {
    "not_yet_monitored": "not_yet_treated",
    "never_monitored": "never_treated",
}


@dataclass
class IndicatorResult:
    """One planned indicator's analysis: the fitted result or why it could not be run."""

    indicator_id: str
    label: str
    role: str  # "primary" or "secondary"
    result: EvaluationResult | None = None
    message: str = ""
    comparison_group: str = ""
    first_round: str = ""
    last_round: str = ""

    @property
    def analysed(self) -> bool:
        return self.result is not None


@dataclass
class PlannedAnalysis:
    """The plan, what was run, the results, and every deviation from the plan.

    ``run_config`` holds what the run actually used, in the plan's field names; the
    ``deviations`` are :func:`~clm_research.plans.check_deviations` of it against the plan,
    plus deviations with a reason (an indicator that could not be analysed, a country the
    plan does not cover).
    """

    plan: AnalysisPlan
    country: str
    run_config: dict[str, Any]
    results: list[IndicatorResult]
    deviations: list[str] = field(default_factory=list)
    chain: ChainResult | None = None

    @property
    def primary(self) -> IndicatorResult:
        return self.results[0]

    @property
    def alpha(self) -> float:
        return float(self.run_config.get("alpha", self.plan.alpha))

    @property
    def estimator(self) -> str:
        """The estimator run (the plan's, unless the run changed it)."""
        return str(self.run_config.get("estimator", self.plan.estimator))

    @property
    def estimator_description(self) -> str:
        """What the estimator run does, in words."""
        return ESTIMATORS[self.estimator]

    def summary(self) -> pd.DataFrame:
        """One row per planned indicator: estimate, CI at 1 − alpha, p, decision, note."""
        import numpy as np
        import pandas as pd

        rows = []
        for r in self.results:
            row: dict[str, Any] = {
                "role": r.role,
                "indicator_id": r.indicator_id,
                "indicator": r.label,
                "design": self.run_config.get("design", self.plan.design),
                "method": "",
                "effect": "",
                "estimate": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "ci_level": f"{1 - self.alpha:.0%}",
                "p_value": np.nan,
                f"p < {self.alpha:g}": "",
                "window": f"{r.first_round}–{r.last_round}" if r.first_round else "",
                "note": r.message,
            }
            if r.result is not None:
                e = r.result.primary
                row.update(
                    method=r.result.method,
                    effect=e.label,
                    estimate=e.estimate,
                    ci_low=e.ci_low,
                    ci_high=e.ci_high,
                    p_value=e.p_value,
                )
                row[f"p < {self.alpha:g}"] = (
                    "yes" if math.isfinite(e.p_value) and e.p_value < self.alpha else "no"
                )
                if not r.message and r.result.notes:
                    row["note"] = " ".join(r.result.notes)
            rows.append(row)
        if self.chain is not None:
            for link in _chain_rows(self.chain):
                p = float(link.p_value)
                estimated = link.status == "estimated"
                rows.append(
                    {
                        "role": "chain link",
                        "indicator_id": str(link.link),
                        "indicator": f"{link.upstream_label} → {link.downstream_label}",
                        "design": "results chain",
                        "method": str(link.method),
                        "effect": "change downstream per unit upstream" if estimated else "",
                        "estimate": float(link.estimate),
                        "ci_low": float(link.ci_low),
                        "ci_high": float(link.ci_high),
                        "ci_level": f"{1 - self.alpha:.0%}",
                        "p_value": p,
                        f"p < {self.alpha:g}": (
                            ("yes" if math.isfinite(p) and p < self.alpha else "no")
                            if estimated
                            else ""
                        ),
                        "window": f"lag {int(link.lag)} round(s)",
                        "note": "" if estimated else str(link.reason),
                    }
                )
        return pd.DataFrame(rows)


def _chain_rows(chain: ChainResult) -> Iterator[Any]:
    """The chain result's links as rows (typed ``Any``: their fields are the table's columns)."""
    return chain.links.itertuples()


def country_plan(country: str) -> AnalysisPlan | None:
    """The analysis plan named in ``params/countries/<country>.yaml`` (``None`` when none is).

    Raises
    ------
    ParamsError
        When the named plan is missing or invalid (the message names the file and field).
    """
    from clm_research.config.country import load_country
    from clm_research.paths import project_root

    params = load_country(country)
    if params.plan is None:
        return None
    return load_plan(project_root() / params.plan)


def _window_panel(panel: pd.DataFrame, first: str, last: str) -> tuple[pd.DataFrame, str]:
    time = "round" if "round" in panel.columns else "period"
    q = panel[time].astype(str)
    if time == "period":
        q = months_to_rounds(q)
    return panel[((q >= first) & (q <= last)).to_numpy()].reset_index(drop=True), time


def _data_window(panel: pd.DataFrame) -> tuple[str, str]:
    time = "round" if "round" in panel.columns else "period"
    q = panel[time].astype(str)
    if time == "period":
        q = months_to_rounds(q)
    return str(q.min()), str(q.max())


def _run_indicator(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    indicator_id: str,
    plan: Mapping[str, Any],
) -> tuple[EvaluationResult, str, str, str, str]:
    """Fit one indicator as ``plan`` says; returns (result, comparison used, first, last, note)."""
    from clm_research.evaluation.client import indicator_gee
    from clm_research.evaluation.did import callaway_santanna, event_study, twfe_did
    from clm_research.evaluation.its import indicator_its
    from clm_research.evaluation.panels import indicator_panel
    from clm_research.evaluation.two_group import cluster_difference, pre_post_change

    estimator, comparison = str(plan["estimator"]), str(plan["comparison_group"])
    first, last = str(plan["first_round"]), str(plan["last_round"])
    level = 1 - float(plan["alpha"])
    if estimator in ("its", "controlled_its"):
        ind = framework.indicator(indicator_id)
        harmonics = plan.get("harmonics")
        res: EvaluationResult = indicator_its(
            framework,
            tables,
            indicator_id,
            controlled=estimator == "controlled_its",
            family=plan.get("its_family") or "",
            harmonics=harmonics if ind.dataset == "routine" else 0,
            first_round=first,
            last_round=last,
            level=level,
        )
        return res, comparison, first, last, ""
    if estimator == "gee":
        res = indicator_gee(
            framework, tables, indicator_id, first_round=first, last_round=last, level=level
        )
        return res, comparison, first, last, ""
    panel = indicator_panel(framework, tables, indicator_id)
    if panel is None:
        raise EvaluationError(
            "not supported for this data: the indicator is measured only where CLM works "
            "(or is not facility-level), so there is no comparison group"
        )
    data_first, data_last = _data_window(panel)
    used_first, used_last = max(first, data_first), min(last, data_last)
    note = ""
    if (used_first, used_last) != (first, last):
        note = f"data cover {data_first}–{data_last}; analysed {used_first}–{used_last}"
    panel, time = _window_panel(panel, used_first, used_last)
    if panel.empty:
        raise EvaluationError(f"no data in the planned window {first}–{last}")
    if estimator == "pre_post":
        res = pre_post_change(panel, time, used_first, used_last, comparison, level)
        return res, comparison, used_first, used_last, note
    if estimator == "two_group":
        res = cluster_difference(panel, time, used_last, level)
        return res, comparison, used_first, used_last, note
    if estimator == "callaway_santanna":
        control = _CONTROL.get(comparison, "not_yet_treated")
        res = callaway_santanna(panel, time=time, control=control, level=level)
        used = comparison if comparison in _CONTROL else "not_yet_monitored"
    elif estimator == "event_study":
        res = event_study(panel, time=time, level=level)
        used = "not_yet_monitored"  # TWFE compares with every facility not (yet) under CLM
    else:
        res = twfe_did(panel, time=time, level=level)
        used = "not_yet_monitored"
    return res, used, used_first, used_last, note


def run_plan(
    plan: AnalysisPlan | str | Path,
    country: str,
    tables: Mapping[str, pd.DataFrame] | None = None,
    framework: Framework | None = None,
    *,
    changes: Mapping[str, Any] | None = None,
) -> PlannedAnalysis:
    """Run exactly the plan on one country's tables and list every deviation.

    Parameters
    ----------
    plan
        An :class:`~clm_research.plans.AnalysisPlan`, a path to its YAML or a study id.
    country
        Country code.
    tables
        Canonical tables (default: the country's processed tables).
    framework
        The country's framework (default: :func:`~clm_research.framework.load_framework`).
    changes
        Deliberate departures from the plan (field → value, among ``design``,
        ``primary_indicator``, ``secondary_indicators``, ``comparison_group``,
        ``first_round``, ``last_round``, ``estimator``, ``its_family``, ``harmonics``,
        ``model``, ``alpha``): they are run **and reported as deviations**. Leave empty to run
        the plan as registered. The changed plan must still be valid (an estimator that fits
        the design).

    Returns
    -------
    PlannedAnalysis
        ``.summary()`` (one row per indicator), ``.deviations``, ``.results``; the report
        chapter :mod:`clm_research.report.plan` presents it.

    Raises
    ------
    ParamsError
        When ``changes`` names a field a run cannot change, or the plan is invalid.

    Examples
    --------
    >>> analysis = run_plan("demo_wait_time", "XA")                        # doctest: +SKIP
    >>> analysis.deviations                                               # doctest: +SKIP
    []
    """
    if not isinstance(plan, AnalysisPlan):
        plan = load_plan(plan)
    changes = dict(changes or {})
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ParamsError(
            f"run_plan: cannot change {unknown}; a run may change {', '.join(CHANGEABLE)}"
        )
    if framework is None:
        from clm_research.framework import load_framework

        framework = load_framework(country)
    if tables is None:
        from clm_research.tables import read_country

        tables = read_country(country)
    eff = plan.model_dump()
    eff.update(changes)
    # a changed plan must still be a valid plan (e.g. an estimator that fits the design)
    validate_model(AnalysisPlan, eff, f"run_plan: plan {plan.study_id} with the changes")
    design, comparison = str(eff["design"]), str(eff["comparison_group"])
    alpha = float(eff["alpha"])
    ids = [str(eff["primary_indicator"]), *[str(s) for s in eff["secondary_indicators"]]]
    known = set(framework.ids)

    results: list[IndicatorResult] = []
    extra: list[str] = []
    for i, iid in enumerate(ids):
        role = "primary" if i == 0 else "secondary"
        if iid not in known:
            results.append(
                IndicatorResult(iid, iid, role, message=f"not in the framework of {country}")
            )
            continue
        ir = IndicatorResult(iid, framework.indicator(iid).label, role)
        try:
            res, used, f, last, note = _run_indicator(framework, tables, iid, eff)
            ir.result, ir.comparison_group, ir.first_round, ir.last_round = res, used, f, last
            ir.message = note
        except (EvaluationError, CLMError) as e:
            msg = str(e)
            if not msg.startswith("not supported"):
                msg = f"not supported for this data: {msg}"
            ir.message = msg
        results.append(ir)

    primary = results[0]
    run: dict[str, Any] = {
        "design": design,
        "estimator": str(eff["estimator"]),
        "its_family": eff["its_family"],
        "harmonics": eff["harmonics"],
        "model": str(eff["model"]),
        "alpha": alpha,
    }
    if primary.analysed:
        run["primary_indicator"] = primary.indicator_id
        run["comparison_group"] = primary.comparison_group
        run["first_round"], run["last_round"] = primary.first_round, primary.last_round
    else:
        extra.append(
            f"primary_indicator: {primary.indicator_id!r} could not be analysed as planned "
            f"({primary.message})"
        )
        run["comparison_group"] = comparison
        run["first_round"], run["last_round"] = eff["first_round"], eff["last_round"]
    run["secondary_indicators"] = [r.indicator_id for r in results[1:] if r.analysed]
    for r in results[1:]:
        if not r.analysed:
            r.message = r.message or "not analysed"
    chain, chain_deviations = _run_chain_links(framework, tables, eff, alpha)
    if "chain_links" in changes:  # a changed list of links is itself a deviation
        run["chain_links"] = eff["chain_links"]
    deviations = check_deviations(plan, run)
    # say why a planned secondary indicator was not analysed
    reasons = {r.indicator_id: r.message for r in results[1:] if not r.analysed}
    deviations = [_with_reasons(d, reasons) for d in deviations]
    if country not in plan.countries:
        extra.append(
            f"countries: the plan covers {', '.join(plan.countries)}; this run analyses {country}"
        )
    return PlannedAnalysis(
        plan=plan,
        country=country,
        run_config=run,
        results=results,
        deviations=deviations + chain_deviations + extra,
        chain=chain,
    )


def _run_chain_links(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    plan: Mapping[str, Any],
    alpha: float,
) -> tuple[ChainResult | None, list[str]]:
    """Test the plan's results-chain links (secondary hypotheses) as the chain analysis does.

    Returns the result and one deviation per planned link that could not be tested (with the
    reason) or was changed by the run.
    """
    from clm_research.evaluation.chain import chain_analysis
    from clm_research.plans import ChainLink

    links = [ChainLink.model_validate(x) for x in plan.get("chain_links") or ()]
    if not links:
        return None, []
    pairs = [(link.upstream, link.downstream) for link in links]
    lags = {(link.upstream, link.downstream): link.lag for link in links if link.lag is not None}
    try:
        chain = chain_analysis(
            tables, framework, links=pairs, lags=lags, mediation=False, level=1 - alpha
        )
    except (EvaluationError, CLMError) as e:
        names = ", ".join(link.name for link in links)
        return None, [f"chain_links: planned but not analysed: {names} ({e})"]
    deviations = []
    for row in _chain_rows(chain):
        if row.status != "estimated":
            deviations.append(
                f"chain_links: planned but not analysed: {row.upstream} → {row.downstream} "
                f"({row.reason})"
            )
    return chain, deviations


def _with_reasons(deviation: str, reasons: Mapping[str, str]) -> str:
    """Append why each planned-but-not-analysed secondary indicator was not analysed."""
    head = "secondary_indicators: planned but not analysed: "
    if not deviation.startswith(head):
        return deviation
    names = deviation[len(head) :].split(", ")
    why = "; ".join(f"{n}: {reasons[n]}" for n in names if n in reasons)
    return f"{deviation} ({why})" if why else deviation
