"""The pre-registered analysis, run exactly as planned, with every deviation listed.

A country's parameters may name an analysis plan (``plan: params/plans/<study>.yaml``,
written by the study-design notebook ``05_analysis_plan``). :func:`run_plan` reads the plan
and runs *its* design, indicators, comparison group, time window, model and alpha on the
country's processed tables with :mod:`clm_research.evaluation`; anything the run could not do
as planned (an indicator without a comparison design, a window the data do not cover, a model
the text does not name, a country the plan does not cover) becomes a deviation, found by
comparing what was actually run with the plan (:func:`clm_research.plans.check_deviations`).

Designs and the estimators they run:

========================  =====================================================================
``did``                   Callaway & Sant'Anna (default), two-way fixed effects or a TWFE event
                          study, as the plan's ``model`` text says; facility × round panels
                          (monthly for routine indicators), errors clustered by facility.
``its``                   Segmented regression of the first CLM wave's aggregated series
                          (level and slope change at its start), controlled by the never-
                          monitored facilities when the comparison group says so; quasi-
                          Poisson with the denominator as offset for counts, OLS with
                          Newey–West errors for means; harmonics when the model mentions
                          seasonality.
``stepped_wedge``         Hussey & Hughes' model with facility and period effects (fixed), i.e.
                          two-way fixed effects, or Callaway & Sant'Anna if the model says so.
``cluster_rct``           Cluster-level (facility means) comparison of CLM and the randomised
                          control arm in the last round, Welch t-interval.
``pre_post``              Facility-level change from the first to the last round at CLM
                          facilities (paired), or CLM minus comparison change.
========================  =====================================================================

The module also shapes routine data into aggregated series for interrupted time series
(:func:`interrupted_series`, :func:`routine_its`, :func:`its_caption`), used by the impact
report as well.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_research.errors import CLMError, ParamsError
from clm_research.plans import AnalysisPlan, check_deviations, load_plan

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from clm_research.evaluation import EvaluationResult
    from clm_research.framework import Framework

__all__ = [
    "ModelSpec",
    "IndicatorResult",
    "PlannedAnalysis",
    "interpret_model",
    "country_plan",
    "indicator_panel",
    "interrupted_series",
    "routine_its",
    "its_caption",
    "its_figure",
    "run_plan",
    "planned_analysis",
    "plan_status",
]

#: Plan fields a run may be told to change (each change is reported as a deviation).
CHANGEABLE = (
    "design",
    "primary_indicator",
    "secondary_indicators",
    "comparison_group",
    "first_round",
    "last_round",
    "model",
    "alpha",
)

_CONTROL = {"not_yet_monitored": "not_yet_treated", "never_monitored": "never_treated"}


# ----------------------------------------------------------------------------- model text


@dataclass(frozen=True)
class ModelSpec:
    """How a plan's free-text ``model`` was read: the estimator run and what it means.

    Attributes
    ----------
    estimator
        ``callaway_santanna``, ``twfe``, ``event_study``, ``segmented`` (ITS), ``paired_change``
        (pre/post) or ``cluster_means`` (cluster RCT).
    family
        ITS family (``quasipoisson``, ``poisson``, ``negbin``, ``ols``) or ``""`` to choose
        from the indicator (counts → quasi-Poisson, means → OLS).
    harmonics
        Sine/cosine pairs for seasonality in an ITS.
    recognised
        False when the text names no estimator this module knows: the design's default ran
        and the model is reported as a deviation.
    description
        What was run, in words.
    """

    estimator: str
    family: str = ""
    harmonics: int = 0
    recognised: bool = True
    description: str = ""


_DESCRIPTIONS = {
    "callaway_santanna": "Callaway & Sant'Anna (2021) difference-in-differences, errors clustered "
    "by facility",
    "twfe": "two-way fixed effects (facility and period), errors clustered by facility",
    "event_study": "two-way fixed-effects event study (leads and lags of CLM start), errors "
    "clustered by facility",
    "segmented": "segmented regression (level and slope change at the start of CLM)",
    "paired_change": "facility-level change from the first to the last round (t-interval)",
    "cluster_means": "facility-level means in the last round, CLM vs randomised control "
    "(Welch t-interval)",
}


def interpret_model(design: str, model: str) -> ModelSpec:
    """Read the estimator a plan's free-text ``model`` names for its ``design``.

    Keywords (case-insensitive): ``callaway`` / ``sant'anna`` / ``heterogeneity-robust`` →
    Callaway & Sant'Anna; ``event study`` → TWFE event study; ``two-way`` / ``twfe`` /
    ``fixed effect`` → two-way fixed effects; for ITS ``quasi``, ``poisson``, ``negative
    binomial``, ``ols`` / ``newey`` / ``linear`` pick the family and ``harmonic`` / ``season``
    adds two harmonic pairs.

    Examples
    --------
    >>> interpret_model("did", "Callaway & Sant'Anna, not-yet-treated controls").estimator
    'callaway_santanna'
    >>> interpret_model("did", "staggered DiD (event study), facility and round fixed effects").estimator
    'event_study'
    >>> interpret_model("its", "quasi-Poisson with harmonics, offset tx_curr").family
    'quasipoisson'
    """
    text = model.lower()
    if design in ("did", "stepped_wedge"):
        if re.search(r"callaway|sant.?anna|heterogeneity.robust", text):
            est = "callaway_santanna"
        elif re.search(r"event.stud", text):
            est = "event_study"
        elif re.search(r"two.way|twfe|fixed.effect|hussey", text):
            est = "twfe"
        else:
            default = "callaway_santanna" if design == "did" else "twfe"
            return ModelSpec(default, recognised=False, description=_DESCRIPTIONS[default])
        return ModelSpec(est, description=_DESCRIPTIONS[est])
    if design == "its":
        family = ""
        if re.search(r"quasi", text):
            family = "quasipoisson"
        elif re.search(r"negative.binomial|negbin", text):
            family = "negbin"
        elif re.search(r"poisson", text):
            family = "poisson"
        elif re.search(r"\bols\b|newey|linear|least squares", text):
            family = "ols"
        harmonics = 2 if re.search(r"harmonic|season|fourier", text) else 0
        recognised = bool(family) or bool(re.search(r"segmented|interrupted|its\b", text))
        desc = _DESCRIPTIONS["segmented"]
        return ModelSpec("segmented", family, harmonics, recognised, desc)
    if design == "pre_post":
        return ModelSpec("paired_change", description=_DESCRIPTIONS["paired_change"])
    return ModelSpec("cluster_means", description=_DESCRIPTIONS["cluster_means"])


# ----------------------------------------------------------------------------- plans


def country_plan(country: str) -> AnalysisPlan | None:
    """The analysis plan named in ``params/countries/<country>.yaml`` (``None`` when none is).

    Raises
    ------
    ParamsError
        When the named plan is missing or invalid (the message names the file and field).
    """
    from clm_research.params import load_country
    from clm_research.paths import project_root

    params = load_country(country)
    if params.plan is None:
        return None
    return load_plan(project_root() / params.plan)


# ----------------------------------------------------------------------------- data shaping


def _quarter(month: Any) -> str:
    text = str(month)
    return f"{text[:4]}Q{(int(text[5:7]) - 1) // 3 + 1}"


def indicator_panel(framework: Framework, tables: Mapping[str, Any], indicator_id: str) -> Any:
    """Facility × time panel of one indicator (``None`` when it has no comparison design).

    Interview indicators are aggregated to facility × round (mean, or median for medians);
    routine indicators with summed numerator and denominator give facility × month ratios
    weighted by the denominator (:func:`clm_research.evaluation.facility_panel` columns:
    ``facility_id``, time, ``outcome``, ``weight``, ``clm_start``, ``treated``). Checklist
    observations, issues, organisations and outreach have no comparison facilities.
    """
    import pandas as pd

    from clm_research.derived import enrich
    from clm_research.evaluation.did import facility_panel
    from clm_research.expressions import evaluate, parse
    from clm_research.reporting import _row_outcome

    ind = framework.indicator(indicator_id)
    fac = tables["facilities"]
    if ind.dataset == "routine" and ind.numerator_sum and not ind.denominator_dataset:
        routine = enrich("routine", tables["routine"], fac)
        if ind.denominator:
            routine = routine[evaluate(parse(ind.denominator), routine)]
        return facility_panel(routine, fac, ind.numerator_sum, ind.denominator_sum, time="period")
    if ind.dataset != "interviews":
        return None
    frame = enrich("interviews", tables["interviews"], fac)
    got = _row_outcome(ind, frame)
    if got is None:
        return None
    scope, value = got
    d = pd.DataFrame({"facility_id": frame["facility_id"], "round": frame["round"], "v": value})
    d = d[scope.to_numpy(dtype=bool)]
    agg = "median" if ind.type == "median" else "mean"
    g = d.groupby(["facility_id", "round"], sort=True)["v"].agg([agg, "size"]).reset_index()
    g = g.rename(columns={agg: "value", "size": "rows"})
    return facility_panel(g, fac, "value", None, time="round")


def _first_wave(facilities: Any) -> tuple[Any, list[str]]:
    """Start date of the first CLM wave and its facilities."""
    starts = facilities["clm_start"].dropna()
    if starts.empty:
        raise CLMError("no facility has a CLM start date: there is no interruption to analyse")
    first = starts.min()
    ids = facilities.loc[facilities["clm_start"] == first, "facility_id"].astype(str).tolist()
    return first, sorted(ids)


def interrupted_series(
    framework: Framework,
    tables: Mapping[str, Any],
    indicator_id: str,
    *,
    first_round: str | None = None,
    last_round: str | None = None,
) -> Any:
    """Aggregated series of one indicator for an interrupted time series.

    The intervention series sums the facilities of the **first CLM wave** (a clean start
    date); the comparison series sums the never-monitored facilities. Routine indicators are
    monthly (numerator and denominator sums: ``count`` and ``exposure``), interview
    indicators by round (``count`` = numerator rows, ``exposure`` = rows in scope for
    proportions; ``value`` = mean of the value for means and medians).

    Returns
    -------
    DataFrame
        ``time, group ("clm" / "comparison"), value, count, exposure, facilities``, with
        ``attrs["intervention_start"]`` (label on the series' time axis),
        ``attrs["time"]`` (``period`` or ``round``) and ``attrs["n_facilities"]``.
    """
    import numpy as np
    import pandas as pd

    from clm_research.derived import enrich
    from clm_research.expressions import evaluate, parse
    from clm_research.reporting import _row_outcome

    ind = framework.indicator(indicator_id)
    fac = tables["facilities"]
    start, wave = _first_wave(fac)
    never = set(fac.loc[fac["clm_start"].isna(), "facility_id"].astype(str))
    group_of = {**{f: "comparison" for f in never}, **{f: "clm" for f in wave}}
    if ind.dataset == "routine" and ind.numerator_sum:
        d = enrich("routine", tables["routine"], fac)
        if ind.denominator:
            d = d[evaluate(parse(ind.denominator), d).to_numpy(dtype=bool)]
        time = "period"
        num = pd.to_numeric(d[ind.numerator_sum], errors="coerce").astype("float64")
        den = (
            pd.to_numeric(d[ind.denominator_sum], errors="coerce").astype("float64")
            if ind.denominator_sum
            else pd.Series(1.0, index=d.index)
        )
        rows = pd.DataFrame(
            {
                "time": d["period"].astype(str),
                "round": d["round"].astype(str),
                "facility_id": d["facility_id"].astype(str),
                "count": num,
                "exposure": den,
            }
        )
        kind = "count"
        label = f"{start.year}-{start.month:02d}"
    elif ind.dataset == "interviews":
        d = enrich("interviews", tables["interviews"], fac)
        got = _row_outcome(ind, d)
        if got is None:
            raise CLMError(f"{indicator_id}: no row-level outcome for a time series")
        scope, value = got
        keep = scope.to_numpy(dtype=bool)
        time = "round"
        rows = pd.DataFrame(
            {
                "time": d["round"].astype(str),
                "round": d["round"].astype(str),
                "facility_id": d["facility_id"].astype(str),
                "count": value.astype(float),
                "exposure": 1.0,
            }
        )[keep]
        kind = "count" if ind.type == "proportion" else "mean"
        label = _quarter(f"{start.year}-{start.month:02d}")
    else:
        raise CLMError(
            f"{indicator_id}: dataset {ind.dataset!r} has no facility time series for an ITS"
        )
    if first_round:
        rows = rows[rows["round"] >= first_round]
    if last_round:
        rows = rows[rows["round"] <= last_round]
    rows = rows.assign(group=rows["facility_id"].map(group_of)).dropna(subset=["group"])
    agg = rows.groupby(["group", "time"], sort=True).agg(
        count=("count", "sum"),
        exposure=("exposure", "sum"),
        facilities=("facility_id", "nunique"),
    )
    if kind == "mean":
        agg["value"] = rows.groupby(["group", "time"], sort=True)["count"].mean()
    else:
        agg["value"] = agg["count"] / agg["exposure"].where(agg["exposure"] > 0)
    out = agg.reset_index()[["time", "group", "value", "count", "exposure", "facilities"]]
    out["count"] = np.round(out["count"]) if kind == "count" else out["count"]
    out.attrs.update(
        intervention_start=label,
        time=time,
        kind=kind,
        n_facilities=len(wave),
        n_comparison=len(never),
        start_date=str(start.date()),
    )
    return out


def routine_its(
    framework: Framework,
    tables: Mapping[str, Any],
    indicator_id: str = "treatment_interruption",
    *,
    controlled: bool = False,
    family: str = "",
    harmonics: int | None = None,
    first_round: str | None = None,
    last_round: str | None = None,
    level: float = 0.95,
) -> EvaluationResult:
    """Interrupted time series of one indicator at the first CLM wave's facilities.

    Level and slope change at the wave's start (Lopez Bernal et al. 2017): quasi-Poisson with
    the denominator as offset for counts and proportions from counts (two harmonic pairs for
    monthly seasonality), OLS with Newey–West errors for means; with ``controlled=True`` the
    never-monitored facilities' series is the comparison (differential changes).

    Returns
    -------
    ITSResult
        ``attrs``-like details in ``diagnostics``: ``series`` (facilities in each series),
        ``intervention_start``.

    Raises
    ------
    EvaluationError
        When the series is too short on a side, or the indicator has no time series.
    """
    from clm_research.evaluation import EvaluationError, controlled_its, segmented_regression

    try:
        s = interrupted_series(
            framework, tables, indicator_id, first_round=first_round, last_round=last_round
        )
    except CLMError as e:
        raise EvaluationError(str(e)) from None
    kind, t0 = s.attrs["kind"], s.attrs["intervention_start"]
    fam = family or ("quasipoisson" if kind == "count" else "ols")
    counts = fam != "ols"
    monthly = s.attrs["time"] == "period"
    pairs = (2 if monthly else 0) if harmonics is None else harmonics
    ind = framework.indicator(indicator_id)
    mult = 100.0 if ind.type == "proportion" else (1000.0 if ind.type == "rate" else 1.0)
    kw: dict[str, Any] = {
        "time": "time",
        "intervention_start": t0,
        "family": fam,
        "harmonics": pairs,
        "period": (12 if monthly else 4) if pairs else None,
        "level": level,
    }
    if counts:
        kw.update(offset="exposure", rate_multiplier=mult)
        outcome = "count"
    else:
        outcome = "value"
    what = f"{indicator_id}: interrupted time series"
    clm = s[s["group"] == "clm"].reset_index(drop=True)
    if clm.empty:
        raise EvaluationError(f"{what}: no data from the first CLM wave's facilities")
    if controlled:
        if not (s["group"] == "comparison").any():
            raise EvaluationError(f"{what}: no never-monitored facilities to compare with")
        res = controlled_its(s, outcome, group="group", treated="clm", **kw)
    else:
        res = segmented_regression(clm, outcome, **kw)
    res.diagnostics.update(
        {
            "indicator": indicator_id,
            "intervention_start": t0,
            "clm_facilities (first wave)": s.attrs["n_facilities"],
            "comparison_facilities": s.attrs["n_comparison"] if controlled else 0,
            "rate_multiplier": mult if counts else 1.0,
        }
    )
    return res


def _pyplot_axes() -> tuple[Any, Any]:
    """A closed pyplot figure: closed so it shows once, pyplot so notebooks render it inline."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    plt.close(fig)
    return fig, ax


def _time_label(index: float, unit: str) -> str:
    i = int(round(index))
    if unit == "quarter":
        return f"{i // 4}Q{i % 4 + 1}"
    return f"{i // 12}-{i % 12 + 1:02d}"


def its_figure(result: EvaluationResult, label: str, unit: str = "") -> Figure:
    """The ITS figure with calendar labels on the time axis and the rate's unit on the y axis."""
    import numpy as np

    fig, ax = _pyplot_axes()
    result.plot(ax=ax)
    t = result.fitted["time"].to_numpy(dtype=float)
    tu = getattr(result, "time_unit", "month")
    step = 6 if tu == "month" else 1
    ticks = np.arange(t.min(), t.max() + 1, step)
    ax.set_xticks(ticks)
    ax.set_xticklabels([_time_label(x, tu) for x in ticks], rotation=45, fontsize=8)
    ax.set_xlabel(tu)
    mult = float(result.diagnostics.get("rate_multiplier", 1.0) or 1.0)
    if mult == 100:
        ax.set_ylabel(f"{label} (%)")
    elif mult != 1:
        ax.set_ylabel(f"per {mult:,.0f} {unit.removeprefix('per ')}".strip())
    else:
        ax.set_ylabel(f"{label}{f' ({unit})' if unit else ''}")
    start = result.diagnostics.get("intervention_start", "")
    ax.set_title(f"{label}\n{result.method}, CLM from {start}", fontsize=9)
    return fig


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.0f}%"


def its_caption(result: EvaluationResult, label: str, unit: str = "") -> str:
    """One plain-language paragraph under an ITS figure: what changed, how sure, the caveat."""
    d = result.diagnostics
    n = d.get("clm_facilities (first wave)", "the")
    start = d.get("intervention_start", "the start of CLM")
    ratio = result.primary.scale in ("rate_ratio", "odds_ratio", "ratio")
    try:
        lvl, slope = result.effect("level_change"), result.effect("slope_change")
        end = result.effect("effect_at_end")
    except KeyError:
        lvl = slope = end = None
    per = "month" if re.match(r"^\d{4}-\d{2}$", str(start)) else "quarter"
    lines = [
        f"**{label}** at the {n} facilities that started CLM in {start}: dots are observed "
        f"values, the solid line the fitted model and the dashed line the counterfactual — "
        f"what the trend before CLM predicts had nothing changed."
    ]
    if lvl is not None and end is not None and slope is not None:
        if ratio:
            lines.append(
                f"At the start the level changed by {_pct(lvl.estimate)} (95% CI "
                f"{_pct(lvl.ci_low)} to {_pct(lvl.ci_high)}) and the trend by "
                f"{_pct(slope.estimate)} per {per}; by the end of the series it was "
                f"{_pct(end.estimate)} against the counterfactual (95% CI {_pct(end.ci_low)} "
                f"to {_pct(end.ci_high)})."
            )
        else:
            u = f" {unit}" if unit else ""
            lines.append(
                f"At the start the level changed by {lvl.estimate:+.3g}{u} (95% CI "
                f"{lvl.ci_low:+.3g} to {lvl.ci_high:+.3g}) and the trend by {slope.estimate:+.3g}"
                f"{u} per {per}; by the end of the series the difference from the counterfactual "
                f"was {end.estimate:+.3g}{u} (95% CI {end.ci_low:+.3g} to {end.ci_high:+.3g})."
            )
        lines.append(
            "The interval includes no change: the data cannot tell this effect from chance."
            if end.is_null
            else "The interval excludes no change."
        )
    if d.get("autocorrelation_flag"):
        lines.append(
            "The residuals are autocorrelated (Ljung–Box p < 0.05), so the intervals may be "
            "too narrow."
        )
    if d.get("comparison_facilities"):
        lines.append(
            f"Changes are relative to the {d['comparison_facilities']} facilities never under "
            "CLM, which removes shocks common to both (controlled ITS)."
        )
    else:
        lines.append(
            "Caveat: an interrupted time series has no comparison group, so anything else that "
            "changed at the same time would look the same; the difference-in-differences above "
            "compares with facilities not yet under CLM."
        )
    return " ".join(lines)


# ----------------------------------------------------------------------------- results


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
    model: ModelSpec
    run_config: dict[str, Any]
    results: list[IndicatorResult]
    deviations: list[str] = field(default_factory=list)

    @property
    def primary(self) -> IndicatorResult:
        return self.results[0]

    @property
    def alpha(self) -> float:
        return float(self.run_config.get("alpha", self.plan.alpha))

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
        return pd.DataFrame(rows)

    def plan_table(self) -> pd.DataFrame:
        """The pre-registered plan, one row per field, next to what the run used."""
        import pandas as pd

        shown = (
            "study_id",
            "question",
            "design",
            "primary_indicator",
            "secondary_indicators",
            "comparison_group",
            "first_round",
            "last_round",
            "model",
            "alpha",
            "minimum_detectable_effect",
            "power",
            "countries",
            "registered_on",
        )
        planned = self.plan.model_dump(mode="json")
        rows = []
        for k in shown:
            used = self.run_config.get(k, "")
            rows.append(
                {
                    "field": k.replace("_", " "),
                    "planned": _text(planned.get(k)),
                    "this run": _text(used) if k in self.run_config else "as planned",
                }
            )
        rows.append({"field": "estimator run", "planned": "", "this run": self.model.description})
        return pd.DataFrame(rows)

    def statement(self) -> str:
        """The primary result in one plain sentence, with the planned minimum effect."""
        p = self.primary
        if p.result is None:
            return f"The primary analysis ({p.label}) could not be run as planned: {p.message}"
        e = p.result.primary
        level = f"{1 - self.alpha:.0%}"
        verdict = (
            "a change unlikely under no effect"
            if math.isfinite(e.p_value) and e.p_value < self.alpha
            else "compatible with no change"
        )
        return (
            f"Primary analysis ({p.label}, {self.run_config.get('design')}): CLM changed it by "
            f"{e.estimate:+.3g} ({level} CI {e.ci_low:+.3g} to {e.ci_high:+.3g}, p = "
            f"{e.p_value:.2g}) — {verdict} at the pre-registered alpha {self.alpha:g}. The plan "
            f"was powered for a minimum detectable effect of {self.plan.minimum_detectable_effect:+g}."
        )

    def deviations_html(self) -> str:
        """A prominent box listing the deviations (green when there are none)."""
        if not self.deviations:
            return (
                '<div style="border:2px solid #2e7d32;background:#e8f5e9;padding:0.8em 1em;'
                'margin:0.5em 0;font-size:1.05em"><strong>No deviations from the '
                "pre-registered plan.</strong> The analysis below is exactly the one "
                f"registered as <code>{html.escape(self.plan.study_id)}</code>.</div>"
            )
        items = "".join(f"<li>{html.escape(d)}</li>" for d in self.deviations)
        return (
            '<div style="border:3px solid #c62828;background:#fdecea;padding:0.8em 1em;'
            'margin:0.5em 0;font-size:1.05em"><strong>&#9888; '
            f"{len(self.deviations)} deviation(s) from the pre-registered plan "
            f"<code>{html.escape(self.plan.study_id)}</code></strong> — read the results below "
            f"with these in mind:<ul>{items}</ul></div>"
        )

    def deviations_markdown(self) -> str:
        """The deviations as Markdown (for text reports)."""
        if not self.deviations:
            return "**No deviations from the pre-registered plan.**"
        return (
            f"**{len(self.deviations)} deviation(s) from the pre-registered plan:**\n"
            + "\n".join(f"- {d}" for d in self.deviations)
        )

    def plot(self) -> Figure | None:
        """The primary result's figure (event-time profile, ITS, …); ``None`` if not run."""
        if self.primary.result is None:
            return None
        res = self.primary.result
        if "intervention_start" in res.diagnostics and hasattr(res, "fitted"):
            return its_figure(res, self.primary.label)
        fig, ax = _pyplot_axes()
        res.plot(ax=ax)
        ax.set_title(f"{self.primary.label}: {res.method}", fontsize=10)
        return fig

    def _repr_markdown_(self) -> str:
        return f"{self.deviations_markdown()}\n\n{self.statement()}"


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v) or "(none)"
    return str(v)


# ----------------------------------------------------------------------------- designs


def _window_panel(panel: Any, first: str, last: str) -> Any:
    time = "round" if "round" in panel.columns else "period"
    q = panel[time].astype(str)
    if time == "period":
        q = q.map(_quarter)
    return panel[((q >= first) & (q <= last)).to_numpy()].reset_index(drop=True), time


def _data_window(panel: Any) -> tuple[str, str]:
    time = "round" if "round" in panel.columns else "period"
    q = panel[time].astype(str)
    if time == "period":
        q = q.map(_quarter)
    return str(q.min()), str(q.max())


def _facility_by_round(panel: Any, time: str) -> Any:
    """Facility × round values (denominator-weighted for monthly routine panels)."""
    import numpy as np

    d = panel.assign(
        _round=panel[time].astype(str).map(_quarter) if time == "period" else panel[time]
    )
    d = d[np.isfinite(d["outcome"].astype(float))]
    d = d.assign(_wy=d["outcome"].astype(float) * d["weight"].astype(float))
    g = d.groupby(["facility_id", "_round"], sort=True)[["_wy", "weight"]].sum()
    g["value"] = g["_wy"] / g["weight"].where(g["weight"] > 0)
    return g["value"].unstack("_round")


def _t_effect(name: str, label: str, diffs: Any, level: float, other: Any = None) -> Any:
    """Mean (or Welch difference of means) with a t-interval, as an :class:`Effect`."""
    import numpy as np

    from clm_research.evaluation import Effect, EvaluationError

    x = np.asarray(diffs, dtype=float)
    x = x[np.isfinite(x)]
    if other is None:
        if len(x) < 3:
            raise EvaluationError(f"{label}: fewer than 3 facilities with data in both rounds")
        est, se, df = float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))), len(x) - 1
        return Effect.from_coefficient(name, label, est, se, level=level, df=df), len(x)
    y = np.asarray(other, dtype=float)
    y = y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        raise EvaluationError(f"{label}: fewer than 2 facilities in an arm")
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    df = (
        (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
        if se > 0
        else len(x) + len(y) - 2
    )
    est = float(x.mean() - y.mean())
    return Effect.from_coefficient(name, label, est, se, level=level, df=df), len(x) + len(y)


def _pre_post(panel: Any, time: str, first: str, last: str, comparison: str, level: float) -> Any:
    from clm_research.evaluation import EvaluationError, EvaluationResult

    wide = _facility_by_round(panel, time)
    if first not in wide.columns or last not in wide.columns:
        raise EvaluationError(f"pre/post needs data in both {first} and {last}")
    starts = panel.groupby("facility_id")["clm_start"].first()
    first_q = starts.dropna().map(lambda s: _quarter(f"{s.year}-{s.month:02d}"))
    clm = first_q[(first_q > first) & (first_q <= last)].index
    never = starts[starts.isna()].index
    change = wide[last] - wide[first]
    notes = []
    if comparison == "none":
        eff, n = _t_effect(
            "pre_post_change",
            f"Change {first} → {last} at CLM facilities",
            change.reindex(clm).to_numpy(),
            level,
        )
        notes.append(
            "A pre/post comparison without a comparison group attributes every change over "
            "time (secular trend, seasonality) to CLM; see study-design notebook 02."
        )
    else:
        if len(never) == 0:
            raise EvaluationError("no never-monitored facilities to compare with")
        eff, n = _t_effect(
            "pre_post_did",
            f"Change {first} → {last}, CLM minus comparison facilities",
            change.reindex(clm).to_numpy(),
            level,
            change.reindex(never).to_numpy(),
        )
    return EvaluationResult(
        method="Pre/post comparison (facility level)",
        effects=(eff,),
        diagnostics={"clm_facilities": len(clm), "comparison_facilities": len(never)},
        n_obs=int(n),
        notes=tuple(notes),
    )


def _cluster_rct(panel: Any, time: str, last: str, level: float) -> Any:
    from clm_research.evaluation import EvaluationError, EvaluationResult

    wide = _facility_by_round(panel, time)
    if last not in wide.columns:
        raise EvaluationError(f"no data in the last round {last}")
    starts = panel.groupby("facility_id")["clm_start"].first()
    never = starts[starts.isna()].index
    if len(never) == 0:
        raise EvaluationError("no randomised control arm: every facility starts CLM")
    on = starts.dropna().map(lambda s: _quarter(f"{s.year}-{s.month:02d}"))
    clm = on[on <= last].index
    eff, n = _t_effect(
        "cluster_difference",
        f"CLM minus control facilities in {last} (facility means)",
        wide[last].reindex(clm).to_numpy(),
        level,
        wide[last].reindex(never).to_numpy(),
    )
    return EvaluationResult(
        method="Cluster-level comparison (randomised arms)",
        effects=(eff,),
        diagnostics={"clm_facilities": len(clm), "control_facilities": len(never)},
        n_obs=int(n),
        notes=(
            "Assumes the allocation to the control arm was randomised, as the plan's design "
            "states; unadjusted for baseline.",
        ),
    )


def _run_indicator(
    framework: Framework,
    tables: Mapping[str, Any],
    indicator_id: str,
    design: str,
    spec: ModelSpec,
    comparison: str,
    first: str,
    last: str,
    alpha: float,
) -> tuple[EvaluationResult, str, str, str, str]:
    """Fit one indicator; returns (result, comparison used, first, last, note)."""
    from clm_research.evaluation import EvaluationError
    from clm_research.evaluation.did import callaway_santanna, event_study, twfe_did

    level = 1 - alpha
    if design == "its":
        ind = framework.indicator(indicator_id)
        res = routine_its(
            framework,
            tables,
            indicator_id,
            controlled=comparison == "never_monitored",
            family=spec.family,
            harmonics=spec.harmonics if ind.dataset == "routine" else 0,
            first_round=first,
            last_round=last,
            level=level,
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
    if design == "pre_post":
        res = _pre_post(panel, time, used_first, used_last, comparison, level)
        return res, comparison, used_first, used_last, note
    if design == "cluster_rct":
        return _cluster_rct(panel, time, used_last, level), comparison, used_first, used_last, note
    # did and stepped_wedge
    if spec.estimator == "callaway_santanna":
        control = _CONTROL.get(comparison, "not_yet_treated")
        res = callaway_santanna(panel, time=time, control=control, level=level)
        used = comparison if comparison in _CONTROL else "not_yet_monitored"
    elif spec.estimator == "event_study":
        res = event_study(panel, time=time, level=level)
        used = "not_yet_monitored"  # TWFE compares with every facility not (yet) under CLM
    else:
        res = twfe_did(panel, time=time, level=level)
        used = "not_yet_monitored"
    return res, used, used_first, used_last, note


def run_plan(
    plan: AnalysisPlan | str | Path,
    country: str,
    tables: Mapping[str, Any] | None = None,
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
        ``first_round``, ``last_round``, ``model``, ``alpha``): they are run **and reported as
        deviations**. Leave empty to run the plan as registered.

    Returns
    -------
    PlannedAnalysis
        ``.summary()`` (one row per indicator), ``.deviations``, ``.plan_table()``,
        ``.deviations_html()``, ``.statement()``, ``.plot()``.

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
        from clm_research.reporting import country_tables

        tables = country_tables(country)
    eff = {k: v for k, v in plan.model_dump().items() if k in CHANGEABLE}
    eff.update(changes)
    design, comparison = str(eff["design"]), str(eff["comparison_group"])
    alpha = float(eff["alpha"])
    spec = interpret_model(design, str(eff["model"]))
    ids = [str(eff["primary_indicator"]), *[str(s) for s in eff["secondary_indicators"]]]
    known = set(framework.ids)

    from clm_research.evaluation import EvaluationError

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
            res, used, f, last, note = _run_indicator(
                framework,
                tables,
                iid,
                design,
                spec,
                comparison,
                str(eff["first_round"]),
                str(eff["last_round"]),
                alpha,
            )
            ir.result, ir.comparison_group, ir.first_round, ir.last_round = res, used, f, last
            ir.message = note
        except (EvaluationError, CLMError) as e:
            msg = str(e)
            if not msg.startswith("not supported"):
                msg = f"not supported for this data: {msg}"
            ir.message = msg
        results.append(ir)

    primary = results[0]
    run: dict[str, Any] = {"design": design, "model": str(eff["model"]), "alpha": alpha}
    if not spec.recognised:
        run["model"] = f"{spec.description} (the design's default: the planned model text "
        run["model"] += "names no estimator this analysis knows)"
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
        model=spec,
        run_config=run,
        results=results,
        deviations=deviations + extra,
    )


def _with_reasons(deviation: str, reasons: Mapping[str, str]) -> str:
    """Append why each planned-but-not-analysed secondary indicator was not analysed."""
    head = "secondary_indicators: planned but not analysed: "
    if not deviation.startswith(head):
        return deviation
    names = deviation[len(head) :].split(", ")
    why = "; ".join(f"{n}: {reasons[n]}" for n in names if n in reasons)
    return f"{deviation} ({why})" if why else deviation


def planned_analysis(country: str) -> PlannedAnalysis | None:
    """The country's planned analysis, run on its processed tables (``None`` without a plan).

    Demo countries without processed tables get them first
    (:func:`clm_research.reporting.ensure_country_data`).
    """
    plan = country_plan(country)
    if plan is None:
        return None
    from clm_research.reporting import ensure_country_data

    ensure_country_data(country)
    return run_plan(plan, country)


def plan_status(analysis: PlannedAnalysis | None, country: str) -> str:
    """One Markdown line: the plan in force, or that none is configured."""
    if analysis is None:
        return (
            f"No analysis plan is configured for {country} (add "
            f"`plan: params/plans/<study>.yaml` to `params/countries/{country}.yaml`)."
        )
    p = analysis.plan
    when = f", registered {p.registered_on}" if p.registered_on else ""
    title = f" — {p.title}" if p.title else ""
    return f"**Pre-registered plan `{p.study_id}`{title}**{when}. *Question:* {p.question}"
