"""Testing the results chain: does progress at one level carry through to the next?

The framework declares the road from monitoring to impact: every indicator names the
indicators it ``contributes_to``, with a lag and an optional filter on its rows (e.g. one issue
category; see :class:`clm_research.framework.Link`). Theory-based evaluation and contribution
analysis (Mayne 2001, 2012) test each link: did the facilities with more upstream progress show
more downstream change, later? A null outcome is only interpretable where one can see where the
chain broke. :func:`chain_analysis` estimates every declared link between indicators measured
per facility and round, lists the links it cannot test with the reason, and — where both ends of
a link have an effect of CLM — the share of CLM's downstream effect carried by the upstream
indicator.

Estimators
----------
*Within-facility link* (:func:`link_effect`) — the downstream indicator at round ``r`` regressed
on the upstream at ``r − lag`` with facility fixed effects and **adoption-cohort × round** fixed
effects; standard errors by the facility-cluster jackknife (CV3: MacKinnon, Nielsen & Webb 2023,
"Cluster-robust inference: a guide to empirical practice"), which stays reliable with the few,
unbalanced clusters a link often has where the usual CR1 sandwich is too small, and a t reference
with G − 1 degrees of freedom; singleton facility-rounds dropped (Correia 2015, "Singletons,
cluster-robust standard errors and fixed effects"). Cohort × round effects refine plain round
effects: CLM's own effect on the downstream indicator —
ramping up, different by roll-out wave — depends only on the cohort and the round, so it is
absorbed, and the link is identified by comparing facilities at the same stage of CLM that made
more or less upstream progress. Assumptions: (i) given these fixed effects, changes in the
upstream indicator are unrelated to other causes of downstream change (no time-varying
confounder such as a new facility manager improving both); (ii) a linear effect that shows at
the declared lag; (iii) the upstream is measured without error — a client-survey indicator
carries sampling noise, which biases the link toward zero (regression dilution), so the result
reports the upstream's *reliability* (the share of its within-facility variation that is not
sampling noise).

*Dose–response* (:func:`dose_response`) for links that start from CLM activities, i.e. from the
intensity of CLM exposure itself (Callaway, Goodman-Bacon & Sant'Anna 2024, "Difference-in-
differences with a continuous treatment"): a facility's dose is its average upstream value over
its CLM rounds; its downstream outcome is the change from its own pre-CLM level where the
indicator is measured before CLM (their ΔY), or the level where it exists only under CLM (issues
found by monitors are zero without monitoring). The slope across CLM facilities, with cohort ×
round fixed effects and facility-clustered errors, is the average causal response on the
treated under *strong* parallel trends and a linear dose–response; dose terciles show its shape.

*Mediation* — product of coefficients (VanderWeele 2015, *Explanation in Causal Inference*,
ch. 2): indirect effect = a·b with a = CLM's effect on the upstream indicator and c = its effect
on the downstream one (Callaway–Sant'Anna simple ATTs on the facility × round panels), b = the
link; share carried = a·b / c. Assumptions on top of the link's: no interaction between CLM and
the intermediate, effects stable over the rounds compared, and a, b, c estimated independently
(the Monte Carlo interval of MacKinnon, Lockwood & Williams 2004 draws them as independent
normals, which ignores the covariance they have from sharing facilities). ``statsmodels``'
``Mediation`` class needs one fitted mediator model and one outcome model on the same units; it
does not take a staggered difference-in-differences with two-way fixed effects, hence this.

numpy and pandas at import; scipy, the indicator engine and the difference-in-differences module
inside the functions that need them; matplotlib only inside :func:`plot_chain`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EvaluationError,
    EvaluationResult,
    new_axes,
    numeric_column,
    require_columns,
)
from clm_research.evaluation._time import time_axis

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from clm_research.framework import Framework, Indicator

__all__ = [
    "STRENGTHS",
    "LinkResult",
    "DoseResponseResult",
    "ChainResult",
    "facility_round_values",
    "link_effect",
    "dose_response",
    "mediated_share",
    "chain_analysis",
    "LINK_STYLES",
    "chain_link_numbers",
    "plot_chain",
    "plot_chain_links",
    "chain_alt_text",
    "chain_links_alt_text",
    "chain_paragraph",
]


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """Rows of ``frame`` as named tuples (typed ``Any``: their fields are the frame's columns)."""
    return frame.itertuples()


#: Plain-language strength of a link, by code (the ``strength`` column of the links table).
STRENGTHS: dict[str, str] = {
    "strong": "strong evidence of a link",
    "moderate": "evidence of a link",
    "opposite": "a link in the unexpected direction",
    "none": "no link: effects of practical size are ruled out",
    "inconclusive": "no evidence of a link (too uncertain to rule one out)",
    "not_estimable": "not estimable",
}

#: Strength codes meaning the chain holds at this link (drawn solid); the others break it.
HOLDS: tuple[str, ...] = ("strong", "moderate")

#: A link whose standardised confidence interval lies within ± this many standard deviations of
#: the downstream indicator (per standard deviation of the upstream) is called "no link"
#: rather than "inconclusive" (0.1 SD is a small effect in Cohen's terms).
NEGLIGIBLE_SD = 0.1

_METHOD_LABEL = {
    "within_facility": "within-facility link (facility and cohort × round fixed effects)",
    "dose_response": "dose–response across CLM facilities (cohort × round fixed effects)",
}

#: Fewest facilities whose upstream value changes between their rounds: only they inform a
#: within-facility link, and the cluster jackknife needs several of them.
MIN_CHANGING_FACILITIES = 5

#: Words for issue categories in the generated paragraph.
_CATEGORY_WORDS = {
    "stock_out": "stock-outs",
    "waiting_time": "waiting times",
    "staff_attitude": "staff attitude",
    "confidentiality": "privacy and confidentiality",
    "viral_load": "viral-load results",
    "infrastructure": "infrastructure",
    "opening_hours": "opening hours",
    "other": "other problems",
}

#: Datasets measured per facility and round (routine months are grouped into quarters).
_PER_FACILITY_ROUND = ("interviews", "observations", "issues", "routine")
_NOT_PER_FACILITY_ROUND = {
    "organisations": "measured per implementing organisation, not per facility and round",
    "outreach": "measured per outreach site, not per facility and round",
    "facilities": "measured once per facility, not per round",
}


class _NotEstimable(Exception):
    """A link that cannot be tested, with the reason shown in the report."""


# ----------------------------------------------------------------------------- results
@dataclass(repr=False)
class LinkResult(EvaluationResult):
    """Result of :func:`link_effect`: one link, with the rows that informed it.

    ``data`` holds the facility-rounds used (``unit``, ``time``, ``upstream``, ``downstream``)
    after dropping singletons; diagnostics give ``n_facilities``, ``n_rounds``,
    ``standardized`` (effect of one within-facility SD of the upstream, in SDs of the
    downstream) with its interval, and ``reliability`` when sampling variances were given.
    """

    data: pd.DataFrame = field(default_factory=pd.DataFrame)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Downstream against lagged upstream, both net of the fixed effects, with the fitted slope."""
        fig, ax = new_axes(ax, figsize=(5.5, 4))
        d = self.data
        if len(d):
            ax.scatter(d["upstream_within"], d["downstream_within"], s=10, color="0.45")
            xs = np.linspace(d["upstream_within"].min(), d["upstream_within"].max(), 2)
            ax.plot(xs, self.estimate * xs, color="tab:blue")
        ax.axhline(0, color="0.7", linewidth=0.8)
        ax.set_xlabel("upstream (net of facility and cohort × round effects)")
        ax.set_ylabel("downstream (net of the same)")
        ax.set_title(self.method)
        return fig


@dataclass(repr=False)
class DoseResponseResult(EvaluationResult):
    """Result of :func:`dose_response`: the slope (average causal response) and dose bands.

    ``bands`` has one row per dose tercile: dose range, facilities, and the difference from
    the lowest band with its confidence interval (cohort × round effects removed).
    """

    bands: pd.DataFrame = field(default_factory=pd.DataFrame)
    data: pd.DataFrame = field(default_factory=pd.DataFrame)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Outcome (net of cohort × round effects) by facility dose, with the fitted line and bands."""
        fig, ax = new_axes(ax, figsize=(5.5, 4))
        d = self.data
        if len(d):
            per = d.groupby("unit").agg(dose=("dose", "first"), y=("outcome_within", "mean"))
            ax.scatter(per["dose"], per["y"], s=14, color="0.45", label="facility")
            xs = np.linspace(per["dose"].min(), per["dose"].max(), 2)
            ax.plot(xs, self.estimate * (xs - per["dose"].mean()), color="tab:blue", label="slope")
        ax.set_xlabel("dose (facility's average upstream value under CLM)")
        ax.set_ylabel("outcome (net of cohort × round effects)")
        ax.set_title(self.method)
        ax.legend(frameon=False, fontsize="small")
        return fig


@dataclass(repr=False)
class ChainResult(EvaluationResult):
    """Result of :func:`chain_analysis`.

    Attributes
    ----------
    links
        One row per declared link (estimated or not): ``upstream``, ``downstream``, ``where``,
        ``lag``, ``method``, ``status`` (``estimated`` / ``not estimable``), ``reason``,
        ``estimate``, ``ci_low``, ``ci_high``, ``se``, ``p_value``, ``q_value`` (Benjamini–
        Hochberg across the estimated links), ``n_facilities``, ``n_rounds``, ``n_obs``,
        ``standardized`` (with its interval), ``expected_sign``, ``strength`` (a code of
        :data:`STRENGTHS`), ``strength_label``, ``reliability``, ``upstream_facility_share``
        and a plain ``statement``.
    mediation
        Per link with a CLM effect at both ends: a, b, c, the indirect effect a·b and the share
        a·b / c with Monte Carlo intervals, and a note.
    clm_effects
        CLM's effect (Callaway–Sant'Anna simple ATT) on each indicator used in a mediation.
    dose_response
        Dose bands of each dose–response link, by link name.
    indicators
        The indicators of the chain: ``id``, ``label``, ``level``, ``direction``, ``dataset``.
    """

    links: pd.DataFrame = field(default_factory=pd.DataFrame)
    mediation: pd.DataFrame = field(default_factory=pd.DataFrame)
    clm_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    dose_response: dict[str, pd.DataFrame] = field(default_factory=dict)
    indicators: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> pd.DataFrame:
        """The links table (one row per declared link)."""
        return self.links.copy()

    def not_estimable(self) -> pd.DataFrame:
        """The links that could not be tested, with the reason."""
        cols = ["link", "upstream", "downstream", "reason"]
        return self.links.loc[self.links["status"] != "estimated", cols].reset_index(drop=True)

    def plot(self, ax: Axes | None = None, status: Mapping[str, str] | None = None) -> Figure:
        """The results-chain diagram (:func:`plot_chain`)."""
        return plot_chain(self, status, ax=ax)

    def alt_text(self, status: Mapping[str, str] | None = None) -> str:
        """Alternative text for the diagram (:func:`chain_alt_text`)."""
        return chain_alt_text(self, status)

    def paragraph(self) -> str:
        """Where the chain holds and where it breaks, in words (:func:`chain_paragraph`)."""
        return chain_paragraph(self)

    def statements(self) -> list[str]:
        return [str(s) for s in self.links["statement"]] + list(self.notes)


# ----------------------------------------------------------------------------- numerics
def _drop_singletons(codes: Sequence[np.ndarray]) -> np.ndarray:
    """Rows kept after repeatedly dropping groups with one row (they are fitted exactly)."""
    keep = np.ones(len(codes[0]), dtype=bool)
    while True:
        changed = False
        for c in codes:
            cnt = np.bincount(c[keep], minlength=c.max() + 1 if len(c) else 0)
            single = keep & (cnt[c] == 1)
            if single.any():
                keep &= ~single
                changed = True
        if not changed:
            return keep


@dataclass
class _Fit:
    coef: np.ndarray  # coefficients of the regressors of interest
    cov: np.ndarray  # their CV3 (cluster-jackknife) covariance
    df: int
    n_obs: int
    n_units: int
    x_within: np.ndarray  # first regressor net of all fixed effects (for plots, scaling)
    y_within: np.ndarray

    @property
    def beta(self) -> float:
        return float(self.coef[0])

    @property
    def se(self) -> float:
        return math.sqrt(float(self.cov[0, 0]))


def _jackknife_fit(
    y: np.ndarray, X: np.ndarray, unit: np.ndarray, cell: np.ndarray, absorb_unit: bool
) -> _Fit:
    """OLS of y on X with cell (and facility) fixed effects; CV3 SEs by the cluster jackknife.

    Facility effects, nested in the facility clusters, are swept out by within-facility
    demeaning (exact, and leaving one facility out leaves the others' demeaned rows unchanged);
    cell effects enter as dummies. The variance is MacKinnon, Nielsen & Webb's CV3 (2023,
    "Cluster-robust inference: a guide to empirical practice", J Econometrics 232:272–299):
    ``(G − 1)/G · Σ_g (θ₍₋g₎ − θ̂)²`` over leave-one-facility-out refits, each from the
    cross-products in closed form; it is reliable with few or unbalanced clusters, where the
    usual CR1 sandwich is too small.
    """
    n, k = X.shape
    g_codes = pd.factorize(unit)[0]
    G = int(g_codes.max()) + 1
    cells = pd.factorize(cell)[0]
    D = np.zeros((n, int(cells.max()) + 1))
    D[np.arange(n), cells] = 1.0
    if absorb_unit:
        cnt = np.bincount(g_codes)
        M = np.column_stack([y, X, D])
        sums = np.zeros((G, M.shape[1]))
        np.add.at(sums, g_codes, M)
        M = M - (sums / cnt[:, None])[g_codes]
        yw, Xw, Dw = M[:, 0], M[:, 1 : 1 + k], M[:, 1 + k :]
    else:
        yw, Xw, Dw = y.astype(float), X.astype(float), D
    # keep a full-rank set of the fixed-effect columns (demeaned cell dummies are collinear
    # within each adoption cohort), so that Z'Z can be inverted once
    if Dw.shape[1]:
        from scipy.linalg import qr

        _, r_fac, piv = qr(Dw, mode="economic", pivoting=True)
        diag = np.abs(np.diag(r_fac))
        rank = int((diag > 1e-10 * max(diag.max(initial=0.0), 1.0)).sum())
        Dw = Dw[:, np.sort(piv[:rank])]
    Z = np.column_stack([Xw, Dw])
    ZtZ = Z.T @ Z
    Zty = Z.T @ yw
    inv = np.linalg.pinv(ZtZ, hermitian=True)
    theta = inv @ Zty
    resid = yw - Z @ theta
    # leave-one-facility-out solutions in closed form (the jackknife of least squares):
    # θ₍₋g₎ = θ̂ − (Z'Z)⁻¹ Z_g' (I − H_gg)⁻¹ ê_g, with H_gg = Z_g (Z'Z)⁻¹ Z_g'; where removing
    # facility g leaves a parameter unidentified (I − H_gg singular) the refit uses a
    # pseudo-inverse instead
    order = np.argsort(g_codes, kind="stable")
    bounds = np.searchsorted(g_codes[order], np.arange(G + 1))
    jack = np.empty((G, k))
    for g in range(G):
        rows = order[bounds[g] : bounds[g + 1]]
        Zg = Z[rows]
        left = Zg @ inv  # T_g × p
        m = np.eye(len(rows)) - left @ Zg.T
        if np.linalg.cond(m) < 1e10:
            jack[g] = theta[:k] - (left.T @ np.linalg.solve(m, resid[rows]))[:k]
        else:
            sol = np.linalg.pinv(ZtZ - Zg.T @ Zg, hermitian=True) @ (Zty - Zg.T @ yw[rows])
            jack[g] = sol[:k]
    dev = jack - theta[:k]
    cov = (G - 1) / G * dev.T @ dev
    # the first regressor and the outcome net of every fixed effect (Frisch–Waugh–Lovell)
    if Dw.shape[1]:
        proj = np.linalg.lstsq(Dw, np.column_stack([Xw[:, 0], yw]), rcond=None)[0]
        within = np.column_stack([Xw[:, 0], yw]) - Dw @ proj
    else:
        within = np.column_stack([Xw[:, 0], yw])
    return _Fit(theta[:k], cov, G - 1, n, G, within[:, 0], within[:, 1])


def _codes(values: Any) -> np.ndarray:
    return pd.factorize(pd.Series(values), sort=True)[0]


def _round_index(values: pd.Series, what: str) -> np.ndarray:
    axis = time_axis(values.reset_index(drop=True), what)
    return axis.index


def _standardized(fit: _Fit) -> float:
    sd_x = float(np.std(fit.x_within))
    sd_y = float(np.std(fit.y_within))
    return sd_x / sd_y if sd_y > 0 else math.nan


# ----------------------------------------------------------------------------- link estimator
def link_effect(
    panel: pd.DataFrame,
    upstream: str,
    downstream: str,
    *,
    unit: str = "facility_id",
    time: str = "round",
    cohort: str | None = None,
    lag: int = 1,
    upstream_variance: str | None = None,
    min_facilities: int = 10,
    level: float = 0.95,
    label: str | None = None,
) -> LinkResult:
    """Association of upstream progress with later downstream change, within facilities.

    ``downstream[f, t] = a_f + d[cohort(f), t] + b · upstream[f, t − lag] + e[f, t]``, with
    facility effects ``a_f``, cohort × round effects ``d`` (round effects when ``cohort`` is
    not given) and errors clustered by facility.

    Parameters
    ----------
    panel
        One row per facility and round with both indicators (missing values allowed).
    upstream, downstream
        Value columns.
    unit, time
        Facility and round columns (rounds ``YYYYQn``, months, dates or numbers).
    cohort
        Column with the facility's first round under CLM (same kind as ``time``; empty =
        comparison facility). Its cohort × round effects absorb CLM's own effect.
    lag
        Rounds between upstream and downstream (0 = same round).
    upstream_variance
        Optional column with the sampling variance of each upstream value (for survey
        indicators): gives the ``reliability`` diagnostic.
    min_facilities
        Fewest facilities (with two or more usable rounds) needed for clustered inference.
    level
        Confidence level.
    label
        Label of the effect (default ``"<upstream> → <downstream>"``).

    Returns
    -------
    LinkResult
        One effect ``link`` (downstream units per unit of upstream), t interval with G − 1
        degrees of freedom; diagnostics ``n_facilities``, ``n_rounds``, ``standardized``,
        ``standardized_ci``, ``reliability``.

    Raises
    ------
    EvaluationError
        Missing columns, duplicate facility-rounds, too few facilities, or an upstream that
        does not vary within facilities.
    """
    what = "link_effect"
    require_columns(panel, [unit, time, upstream, downstream, cohort, upstream_variance], what)
    if lag < 0:
        raise EvaluationError(f"{what}: lag must be 0 or more rounds, got {lag}")
    df = panel.reset_index(drop=True)
    if df.duplicated([unit, time]).any():
        row = int(df.duplicated([unit, time]).to_numpy().argmax())
        raise EvaluationError(
            f"{what}: duplicate {unit} × {time} in row {row} "
            f"({df[unit].iloc[row]!r}, {df[time].iloc[row]!r})"
        )
    t = _round_index(df[time], what)
    up = numeric_column(df, upstream, what).to_numpy(float)
    down = numeric_column(df, downstream, what).to_numpy(float)
    var = numeric_column(df, upstream_variance, what).to_numpy(float) if upstream_variance else None
    u_codes = _codes(df[unit])
    # upstream at t − lag for each row: a lookup on (facility, time)
    key = pd.MultiIndex.from_arrays([u_codes, t])
    lag_key = pd.MultiIndex.from_arrays([u_codes, t - lag])
    pos = key.get_indexer(lag_key)
    x = np.where(pos >= 0, up[np.maximum(pos, 0)], np.nan)
    v = np.where(pos >= 0, var[np.maximum(pos, 0)], np.nan) if var is not None else None
    if cohort is not None:
        axis = time_axis(df[time], what)
        c_raw = df[cohort]
        c = np.full(len(df), np.inf)
        present = c_raw.notna().to_numpy()
        if present.any():
            c[present] = axis.convert_many(c_raw[present])
        cell = _codes([f"{ci}|{ti}" for ci, ti in zip(c, t, strict=True)])
    else:
        cell = _codes(t)
    ok = np.isfinite(x) & np.isfinite(down)
    if v is not None:
        ok &= np.isfinite(v)
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        raise EvaluationError(
            f"{what}: no facility has {upstream!r} in one round and {downstream!r} {lag} "
            f"round(s) later"
        )
    uc, cc = _codes(u_codes[rows]), _codes(cell[rows])
    keep = _drop_singletons([uc, cc])
    rows = rows[keep]
    uc, cc = _codes(u_codes[rows]), _codes(cell[rows])
    G = int(uc.max()) + 1 if len(uc) else 0
    if G < max(min_facilities, 2):
        raise EvaluationError(
            f"{what}: too few facilities: {G} with two or more rounds that pair {upstream!r} "
            f"with {downstream!r} {lag} round(s) later (need at least {max(min_facilities, 2)} "
            "for facility-clustered inference)"
        )
    spread = pd.Series(x[rows]).groupby(uc).agg(lambda v: float(v.max() - v.min()))
    changing = int((spread > 1e-9).sum())
    if changing < MIN_CHANGING_FACILITIES:
        raise EvaluationError(
            f"{what}: {upstream!r} changed between rounds in only {changing} of {G} facilities "
            f"(need at least {MIN_CHANGING_FACILITIES} to compare rounds within facilities)"
        )
    fit = _jackknife_fit(down[rows], x[rows][:, None], uc, cc, absorb_unit=True)
    if float(np.var(fit.x_within)) <= 1e-12 * max(1.0, float(np.var(x[rows]))):
        raise EvaluationError(
            f"{what}: {upstream!r} does not vary within facilities once round effects are removed"
        )
    eff = Effect.from_coefficient(
        "link",
        label or f"{upstream} → {downstream}",
        fit.beta,
        fit.se,
        level=level,
        df=fit.df,
    )
    scale = _standardized(fit)
    diag: dict[str, Any] = {
        "n_facilities": G,
        "n_facilities_changing": changing,
        "n_rounds": int(len(np.unique(t[rows]))),
        "lag": lag,
        "time_effects": "cohort × round" if cohort is not None else "round",
        "standardized": eff.estimate * scale,
        "standardized_ci": (eff.ci_low * scale, eff.ci_high * scale),
        "cluster_df": fit.df,
        "variance": "CV3 cluster jackknife by facility",
        "singletons_dropped": int((~keep).sum()),
        "reliability": math.nan,
    }
    notes: list[str] = []
    if v is not None:
        # expected sampling variance left after demeaning, per row ≈ v (1 − 1/T_f)(1 − 1/n_cell)
        t_f = np.bincount(uc)[uc]
        n_c = np.bincount(cc)[cc]
        noise = float(np.mean(v[rows] * (1 - 1 / t_f) * (1 - 1 / n_c)))
        total = float(np.var(fit.x_within))
        rel = max(0.0, 1 - noise / total) if total > 0 else math.nan
        diag["reliability"] = rel
        if rel < 0.5:
            notes.append(
                f"The upstream is a survey estimate: sampling noise makes up {1 - rel:.0%} of "
                "its variation within facilities. If the downstream responds to the true level "
                "rather than to this sample's estimate of it, the link is understated "
                f"(regression dilution, by a factor of about {rel:.2f})."
            )
    data = pd.DataFrame(
        {
            "unit": df[unit].to_numpy()[rows],
            "time": df[time].to_numpy()[rows],
            "upstream": x[rows],
            "downstream": down[rows],
            "upstream_within": fit.x_within,
            "downstream_within": fit.y_within,
        }
    )
    return LinkResult(
        method=f"Results-chain link, {_METHOD_LABEL['within_facility']}",
        effects=(eff,),
        diagnostics=diag,
        n_obs=fit.n_obs,
        notes=tuple(notes),
        data=data,
    )


def dose_response(
    panel: pd.DataFrame,
    dose: str,
    outcome: str,
    *,
    unit: str = "facility_id",
    time: str = "round",
    cohort: str = "cohort",
    lag: int = 0,
    min_facilities: int = 10,
    level: float = 0.95,
    label: str | None = None,
) -> DoseResponseResult:
    """Dose–response of an outcome on CLM intensity across CLM facilities.

    A facility's dose is the mean of ``dose`` over its rounds under CLM. Its outcome in each
    round from ``cohort + lag`` on is the change from its own mean before CLM when it has
    rounds before CLM (Callaway, Goodman-Bacon & Sant'Anna 2024), else the level (for
    outcomes that exist only under CLM, such as issues found by monitors). The slope on the
    dose, with cohort × round effects and facility-clustered errors, is the average causal
    response on the treated under strong parallel trends and linearity.

    Parameters
    ----------
    panel
        Facility × round rows with ``dose`` (the upstream indicator, defined under CLM) and
        ``outcome`` (the downstream indicator).
    dose, outcome
        Value columns.
    unit, time, cohort
        Facility, round, and first round under CLM (empty = comparison facility, not used).
    lag
        Rounds after CLM starts before the outcome is counted.
    min_facilities
        Fewest CLM facilities with a dose and an outcome.
    level
        Confidence level.
    label
        Label of the effect.

    Returns
    -------
    DoseResponseResult
        Effect ``slope`` (outcome units per unit of dose) and ``bands`` (terciles of dose).

    Raises
    ------
    EvaluationError
        Missing columns, too few CLM facilities, or doses that do not vary.
    """
    what = "dose_response"
    require_columns(panel, [unit, time, cohort, dose, outcome], what)
    df = panel.reset_index(drop=True)
    axis = time_axis(df[time], what)
    t = axis.index
    c = np.full(len(df), np.inf)
    present = df[cohort].notna().to_numpy()
    if present.any():
        c[present] = axis.convert_many(df.loc[present, cohort])
    d_val = numeric_column(df, dose, what).to_numpy(float)
    y_val = numeric_column(df, outcome, what).to_numpy(float)
    u = df[unit].astype(str).to_numpy()
    clm = np.isfinite(c)
    under = clm & (t >= c)
    doses = pd.Series(np.where(under, d_val, np.nan)).groupby(u).mean()
    pre = clm & (t < c) & np.isfinite(y_val)
    pre_mean = pd.Series(np.where(pre, y_val, np.nan)).groupby(u).mean()
    has_pre = pre_mean.notna()
    post = clm & (t >= c + lag) & np.isfinite(y_val)
    post_units = pd.unique(u[post])
    use_change = bool(len(post_units)) and has_pre.reindex(post_units).fillna(False).mean() >= 0.5
    if use_change:
        base = pre_mean.reindex(u).to_numpy()
        y = y_val - base
        scale = "change from the facility's level before CLM"
    else:
        y = y_val
        scale = "level (the outcome exists only under CLM)"
    dose_row = doses.reindex(u).to_numpy()
    ok = post & np.isfinite(y) & np.isfinite(dose_row)
    rows = np.flatnonzero(ok)
    G = len(np.unique(u[rows]))
    if G < max(min_facilities, 2):
        raise EvaluationError(
            f"{what}: too few CLM facilities with a dose and an outcome: {G} "
            f"(need at least {max(min_facilities, 2)})"
        )
    cell = _codes([f"{ci}|{ti}" for ci, ti in zip(c[rows], t[rows], strict=True)])
    uc = _codes(u[rows])
    distinct = int(len(np.unique(np.round(doses.reindex(pd.unique(u[rows])).to_numpy(), 9))))
    if distinct < 3:
        raise EvaluationError(
            f"{what}: {dose!r} takes only {distinct} distinct value(s) across CLM facilities "
            "(a dose–response needs at least 3)"
        )
    fit = _jackknife_fit(y[rows], dose_row[rows][:, None], uc, cell, absorb_unit=False)
    if float(np.var(fit.x_within)) <= 1e-12:
        raise EvaluationError(f"{what}: {dose!r} does not vary between CLM facilities")
    eff = Effect.from_coefficient(
        "slope",
        label or f"{dose} → {outcome} (dose–response)",
        fit.beta,
        fit.se,
        level=level,
        df=fit.df,
    )
    stdz = _standardized(fit)
    # dose terciles: differences from the lowest band, same fixed effects and clustering
    per_unit = doses.reindex(pd.unique(u[rows]))
    cuts = np.quantile(per_unit.to_numpy(), [1 / 3, 2 / 3])
    band_of = np.digitize(per_unit.to_numpy(), cuts, right=True)
    band_names = ["low", "middle", "high"]
    unit_band = dict(zip(per_unit.index, band_of, strict=True))
    b_row = np.array([unit_band[x] for x in u[rows]])
    bands = []
    from scipy import stats

    crit = float(stats.t.ppf(0.5 + level / 2, fit.df))
    X = np.column_stack([(b_row == b).astype(float) for b in (1, 2)])
    for b in range(3):
        in_b = per_unit.to_numpy()[band_of == b]
        row: dict[str, Any] = {
            "band": band_names[b],
            "dose_min": float(in_b.min()) if len(in_b) else math.nan,
            "dose_max": float(in_b.max()) if len(in_b) else math.nan,
            "n_facilities": int(len(in_b)),
            "difference_from_low": 0.0 if b == 0 else math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
        }
        bands.append(row)
    if X[:, 0].any() and X[:, 1].any() and (b_row == 0).any():
        band_fit = _jackknife_fit(y[rows], X, uc, cell, absorb_unit=False)
        for j, b in enumerate((1, 2)):
            se = math.sqrt(float(band_fit.cov[j, j]))
            bands[b].update(
                difference_from_low=float(band_fit.coef[j]),
                ci_low=float(band_fit.coef[j] - crit * se),
                ci_high=float(band_fit.coef[j] + crit * se),
            )
    data = pd.DataFrame(
        {
            "unit": u[rows],
            "time": df[time].to_numpy()[rows],
            "dose": dose_row[rows],
            "outcome": y[rows],
            "outcome_within": fit.y_within,
        }
    )
    return DoseResponseResult(
        method=f"Results-chain link, {_METHOD_LABEL['dose_response']}",
        effects=(eff,),
        diagnostics={
            "n_facilities": G,
            "n_rounds": int(len(np.unique(t[rows]))),
            "outcome_scale": scale,
            "lag": lag,
            "standardized": eff.estimate * stdz,
            "standardized_ci": (eff.ci_low * stdz, eff.ci_high * stdz),
            "cluster_df": fit.df,
            "reliability": math.nan,
        },
        n_obs=len(rows),
        notes=(
            f"Outcome: {scale}. The slope compares CLM facilities at the same stage of CLM with "
            "more or less intensive monitoring; reading it as causal needs strong parallel "
            "trends (facilities choosing a dose would have changed alike without CLM) and a "
            "linear response (Callaway, Goodman-Bacon & Sant'Anna 2024).",
        ),
        bands=pd.DataFrame(bands),
        data=data,
    )


# ----------------------------------------------------------------------------- mediation
def mediated_share(
    a: Effect,
    b: Effect,
    c: Effect,
    *,
    level: float = 0.95,
    draws: int = 20_000,
    seed: int = 16,
) -> tuple[Effect, Effect | None, str]:
    """Indirect effect a·b and share of CLM's downstream effect it carries, a·b / c.

    Parameters
    ----------
    a
        CLM's effect on the intermediate (upstream) indicator.
    b
        The link: change in the downstream indicator per unit of the intermediate.
    c
        CLM's (total) effect on the downstream indicator.
    level
        Confidence level of the Monte Carlo percentile intervals (MacKinnon, Lockwood &
        Williams 2004), drawing a, b and c as independent normals.
    draws, seed
        Monte Carlo draws and their seed (fixed: the same data give the same interval).

    Returns
    -------
    (indirect, share, note)
        ``share`` is ``None`` when c's interval includes no effect (there is no CLM effect on
        the downstream indicator to divide); ``note`` says so in words.
    """
    for e, name in ((a, "a"), (b, "b"), (c, "c")):
        if not (np.isfinite(e.estimate) and np.isfinite(e.se) and e.se > 0):
            raise EvaluationError(f"mediated_share: {name} needs a finite estimate and SE")
    rng = np.random.default_rng(seed)
    ad = rng.normal(a.estimate, a.se, draws)
    bd = rng.normal(b.estimate, b.se, draws)
    cd = rng.normal(c.estimate, c.se, draws)
    lo_q, hi_q = 0.5 - level / 2, 0.5 + level / 2
    ind = ad * bd
    indirect = Effect(
        "indirect",
        "CLM effect carried by the intermediate (a·b)",
        float(a.estimate * b.estimate),
        float(np.quantile(ind, lo_q)),
        float(np.quantile(ind, hi_q)),
        float(2 * min((ind <= 0).mean(), (ind >= 0).mean())),
        "difference",
        float(ind.std()),
        level,
    )
    if c.is_null:
        return (
            indirect,
            None,
            (
                "CLM had no detectable effect on the downstream indicator, so no share of it can "
                "be attributed to the intermediate."
            ),
        )
    share_draws = ind / cd
    share = Effect(
        "share_mediated",
        "Share of CLM's downstream effect carried by the intermediate (a·b / c)",
        float(a.estimate * b.estimate / c.estimate),
        float(np.quantile(share_draws, lo_q)),
        float(np.quantile(share_draws, hi_q)),
        math.nan,
        "proportion",
        math.nan,
        level,
    )
    return indirect, share, ""


# ----------------------------------------------------------------------------- panels
def _framework_for_panels(framework: Framework) -> Framework:
    """The framework with small-cell suppression off: facility-round values for analysis only."""
    inds = tuple(i.model_copy(update={"min_cell_size": 0}) for i in framework.indicators)
    return framework.model_copy(update={"min_cell_size": 0, "indicators": inds})


def _present(tables: Mapping[str, Any], name: str) -> pd.DataFrame | None:
    t = tables.get(name)
    return t if isinstance(t, pd.DataFrame) else None


def _check_measurable(ind: Indicator, tables: Mapping[str, Any], where: str | None) -> None:
    """Raise :class:`_NotEstimable` when the indicator cannot be had per facility and round."""
    from clm_research.derived import DERIVED_COLUMNS
    from clm_research.expressions import columns, parse

    if ind.dataset in _NOT_PER_FACILITY_ROUND:
        raise _NotEstimable(f"{ind.id}: {_NOT_PER_FACILITY_ROUND[ind.dataset]}")
    if ind.dataset not in _PER_FACILITY_ROUND:
        raise _NotEstimable(f"{ind.id}: dataset {ind.dataset!r} is not measured per facility")
    facilities = _present(tables, "facilities")
    needed = ind.columns_used
    if where:
        needed = {
            **needed,
            ind.dataset: set(needed.get(ind.dataset, set())) | columns(parse(where)),
        }
    for ds, cols in needed.items():
        frame = _present(tables, ds)
        if frame is None:
            raise _NotEstimable(f"not collected: no {ds} table")
        if frame.empty:
            raise _NotEstimable(f"not collected: the {ds} table is empty")
        available = set(frame.columns)
        if ds in ("routine", "outreach"):
            available.add("round")
        if facilities is not None:
            available |= {c.name for c in DERIVED_COLUMNS.get(ds, ())}
        key = {"facility_id", "period" if ds == "routine" else "round"}
        missing = sorted((set(cols) | key) - available)
        derived = {c.name for c in DERIVED_COLUMNS.get(ds, ())}
        if facilities is None and set(missing) & derived:
            # district, CLM arm and the like come from the facilities table
            raise _NotEstimable(
                f"not collected: no facilities table (needed for {sorted(set(missing) & derived)[0]!r})"
            )
        if missing:
            raise _NotEstimable(
                f"not collected: no {missing[0]!r} column in the {ds} table (needed by {ind.id})"
            )


def facility_round_values(
    tables: Mapping[str, pd.DataFrame],
    framework: Framework,
    indicator_id: str,
    where: str | None = None,
) -> pd.DataFrame:
    """One indicator per facility and round, unsuppressed, for analysis (never for publication).

    Parameters
    ----------
    tables
        Canonical tables by name (any subset).
    framework
        The validated framework; the indicator is computed by the indicator engine, so its
        definition is the one the reports use.
    indicator_id
        The indicator.
    where
        Optional filter on the indicator's own dataset rows (e.g. one issue category).

    Returns
    -------
    DataFrame
        ``facility_id``, ``round``, ``value``, ``n`` (its denominator or number of rows) and
        ``variance`` (sampling variance of the value for client-survey proportions and means,
        else NaN). Facility-rounds without a value are left out.

    Raises
    ------
    EvaluationError
        When the indicator is not measured per facility and round in these tables (the message
        gives the reason, e.g. ``not collected: no issues table``).
    """
    ind = framework.indicator(indicator_id)
    try:
        _check_measurable(ind, tables, where)
    except _NotEstimable as e:
        raise EvaluationError(str(e)) from None
    return _values(ind, tables, _framework_for_panels(framework), where)


def _values(
    ind: Indicator, tables: Mapping[str, Any], fw0: Framework, where: str | None
) -> pd.DataFrame:
    """One indicator per facility and round (its rows filtered by ``where`` first)."""
    from clm_research.derived import enrich
    from clm_research.expressions import evaluate, parse

    use = {k: v for k, v in tables.items() if isinstance(v, pd.DataFrame)}
    if where:
        frame = use[ind.dataset]
        mask = evaluate(parse(where), enrich(ind.dataset, frame, use.get("facilities")))
        use[ind.dataset] = frame.loc[mask.to_numpy(dtype=bool)]
    return _many_values([ind], use, fw0)[ind.id]


def _many_values(
    inds: Sequence[Indicator], tables: Mapping[str, Any], fw0: Framework
) -> dict[str, pd.DataFrame]:
    """Several indicators per facility and round in one engine call (datasets enriched once)."""
    from scipy import stats

    from clm_research.indicators import compute_indicators

    if not inds:
        return {}
    use = {k: v for k, v in tables.items() if isinstance(v, pd.DataFrame)}
    res_all = compute_indicators(
        fw0, use, by=["facility_id", "round"], indicators=[i.id for i in inds]
    )
    out_all: dict[str, pd.DataFrame] = {}
    for ind in inds:
        res = res_all[res_all["indicator_id"] == ind.id]
        res = res[np.isfinite(res["estimate"].to_numpy(float))]
        den = res["denominator"]
        out = pd.DataFrame(
            {
                "facility_id": res["facility_id"].astype(str).to_numpy(),
                "round": res["round"].astype(str).to_numpy(),
                "value": res["estimate"].to_numpy(float),
                "n": den.where(den.notna(), res["n"]).to_numpy(float),
            }
        )
        out["variance"] = np.nan
        if ind.dataset == "interviews" and ind.type == "proportion":
            n = out["n"].to_numpy(float)
            p = out["value"].to_numpy(float)
            out["variance"] = np.where(n > 0, p * (1 - p) / np.maximum(n, 1), np.nan)
        elif ind.dataset == "interviews" and ind.type == "mean":
            # the engine's t interval: half-width = t(n − 1) · sd / √n, so var(mean) = (hw/t)²
            n = res["n"].to_numpy(float)
            hw = (res["ci_high"] - res["ci_low"]).to_numpy(float) / 2
            tq = stats.t.ppf(0.5 + fw0.confidence / 2, np.maximum(n - 1, 1))
            out["variance"] = np.where(n > 1, (hw / tq) ** 2, np.nan)
        bad = (out["facility_id"] == "(all)") | (out["round"] == "(all)")
        if bad.any():
            raise _NotEstimable(f"{ind.id}: not measured per facility and round")
        out_all[ind.id] = out.reset_index(drop=True)
    return out_all


def _cohort_rounds(tables: Mapping[str, Any]) -> pd.Series | None:
    """First round (``YYYYQn``) under CLM by facility id; NaN = comparison; None = unknown."""
    fac = _present(tables, "facilities")
    if fac is None or "clm_start" not in fac.columns or "facility_id" not in fac.columns:
        return None
    start = pd.to_datetime(fac["clm_start"], errors="coerce")
    label = (
        start.dt.year.astype("Int64").astype(str)
        + "Q"
        + ((start.dt.month - 1) // 3 + 1).astype("Int64").astype(str)
    )
    label = label.where(start.notna())
    return pd.Series(label.to_numpy(), index=fac["facility_id"].astype(str).to_numpy())


# ----------------------------------------------------------------------------- the analysis
@dataclass(frozen=True)
class _DeclaredLink:
    upstream: Indicator
    downstream: Indicator
    lag: int
    where: str | None

    @property
    def name(self) -> str:
        tail = f" [{self.where}]" if self.where else ""
        return f"{self.upstream.id} → {self.downstream.id}{tail}"

    @property
    def method(self) -> Literal["within_facility", "dose_response"]:
        # links from CLM's own activities test the intensity of exposure itself
        return (
            "dose_response"
            if self.upstream.level in ("inputs", "activities")
            else "within_facility"
        )


def _declared(framework: Framework, only: Iterable[tuple[str, str]] | None) -> list[_DeclaredLink]:
    wanted = set(only) if only is not None else None
    out = []
    for ind in framework.indicators:
        for link in ind.chain_links:
            if wanted is not None and (ind.id, link.to) not in wanted:
                continue
            out.append(_DeclaredLink(ind, framework.indicator(link.to), link.lag, link.where))
    if wanted is not None:
        known = {(d.upstream.id, d.downstream.id) for d in out}
        unknown = sorted(wanted - known)
        if unknown:
            raise EvaluationError(
                f"chain_analysis: {unknown[0][0]} → {unknown[0][1]} is not a link of the "
                "framework (declare it under contributes_to)"
            )
    return out


def _expected_sign(up: Indicator, down: Indicator) -> int:
    """+1 when upstream progress should raise the downstream value, −1 when it should lower it."""
    s_up = 1 if up.direction == "higher_is_better" else -1
    s_down = 1 if down.direction == "higher_is_better" else -1
    return s_up * s_down


def _strength(eff: Effect, expected: int, std_ci: tuple[float, float]) -> str:
    if eff.p_value < 0.05 and np.sign(eff.estimate) == expected:
        return "strong" if eff.p_value < 0.01 else "moderate"
    if eff.p_value < 0.05:
        return "opposite"
    lo, hi = std_ci
    if np.isfinite(lo) and np.isfinite(hi) and max(abs(lo), abs(hi)) < NEGLIGIBLE_SD:
        return "none"
    return "inconclusive"


def _quarter_numbers(labels: pd.Series) -> pd.Series:
    """Round labels (``YYYYQn``) as consecutive integers, each distinct label parsed once."""
    uniq = pd.unique(labels.dropna())
    if not len(uniq):
        return pd.Series(np.nan, index=labels.index)
    index = time_axis(pd.Series([str(u) for u in uniq]), "round").index
    return labels.map(dict(zip(uniq, index, strict=True))).astype(float)


def _clm_effect(
    values: pd.DataFrame, cohorts: pd.Series, level: float
) -> tuple[Effect | None, str]:
    """Callaway–Sant'Anna simple ATT on a facility × round panel of one indicator."""
    from clm_research.evaluation.did import callaway_santanna

    panel = values.assign(cohort=values["facility_id"].map(cohorts))
    if panel["cohort"].notna().all():
        return None, "no comparison facilities measure it"
    panel["t"] = _quarter_numbers(panel["round"])
    panel["cohort_t"] = _quarter_numbers(panel["cohort"])
    try:
        res = callaway_santanna(panel, "value", time="t", cohort="cohort_t", level=level)
    except EvaluationError as e:
        return None, str(e)
    return res.primary, ""


def _complete_share(values: pd.DataFrame, ind: Indicator) -> tuple[float, int]:
    """For a proportion: share of facilities whose rows all counted (e.g. every issue of the
    category they raised was resolved); NaN for other indicator types."""
    n_fac = int(values["facility_id"].nunique())
    if ind.type != "proportion" or not len(values):
        return math.nan, n_fac
    per = (
        values.assign(num=values["value"] * values["n"]).groupby("facility_id")[["num", "n"]].sum()
    )
    return float((per["num"] >= per["n"] - 1e-9).mean()), n_fac


def _reader_reason(reason: str, inds: Iterable[Indicator]) -> str:
    """The estimator's message in a reader's words: indicators by their labels, not codes."""
    for prefix in ("link_effect: ", "dose_response: "):
        reason = reason.removeprefix(prefix)
    import re

    for ind in inds:
        # an indicator's code becomes its label; a column named like it ("no 'x' column") stays
        reason = re.sub(rf"(?<!no )'{re.escape(ind.id)}'", f"“{ind.label}”", reason)
        reason = reason.replace(f"(needed by {ind.id})", f"(needed by “{ind.label}”)")
    reason = reason.replace("takes only 1 distinct value(s)", "takes a single value")
    return reason


def _reason_kind(reason: str) -> str:
    """Why a link was not tested: ``not collected``, ``not per facility and round`` or
    ``insufficient data``."""
    if reason.startswith("not collected") or "missing from the" in reason:
        return "not collected"
    if ("measured" in reason and "not per" in reason) or "not measured per facility" in reason:
        return "not per facility and round"
    return "insufficient data"


def chain_analysis(
    tables: Mapping[str, pd.DataFrame],
    framework: Framework,
    *,
    links: Iterable[tuple[str, str]] | None = None,
    lags: Mapping[tuple[str, str], int] | None = None,
    min_facilities: int = 10,
    clm_effects: Mapping[str, Effect] | None = None,
    mediation: bool = True,
    level: float | None = None,
    seed: int = 16,
) -> ChainResult:
    """Test every declared link of the results chain on one country's tables.

    Parameters
    ----------
    tables
        Canonical tables by name; any subset (a country may lack issues or routine data: the
        links that need them are listed as not collected).
    framework
        The country's framework; its ``contributes_to`` links (with lag and filter) are the
        links tested.
    links
        Only these ``(upstream, downstream)`` pairs (default: every declared link).
    lags
        Lags that replace the framework's, by ``(upstream, downstream)`` (e.g. from an
        analysis plan).
    min_facilities
        Fewest facilities that must inform a link.
    clm_effects
        CLM effects already estimated (indicator id → effect), reused for mediation; others
        are estimated here with Callaway–Sant'Anna on facility × round panels.
    mediation
        Estimate the share of CLM's effect carried by each within-facility link whose two
        indicators both have a CLM effect.
    level
        Confidence level (default: the framework's).
    seed
        Seed of the Monte Carlo interval of each mediated share: a report passes its ``seed``
        parameter, so the same data and seed give the same intervals.

    Returns
    -------
    ChainResult
        ``links`` (every declared link, estimated or with the reason it is not),
        ``mediation``, ``clm_effects``, ``dose_response`` bands, ``indicators``; ``effects``
        holds the estimated links; ``.plot()``, ``.alt_text()``, ``.paragraph()``.

    Raises
    ------
    EvaluationError
        When ``links`` names a pair the framework does not declare.
    """
    from clm_research.evaluation.multiplicity import benjamini_hochberg

    level = level or framework.confidence
    lags = dict(lags or {})
    declared = _declared(framework, links)
    fw0 = _framework_for_panels(framework)
    cohorts = _cohort_rounds(tables)
    cache: dict[tuple[str, str | None], pd.DataFrame | str] = {}
    # indicators without a filter: one engine call for all of them (datasets enriched once)
    plain: dict[str, Indicator] = {}
    for d in declared:
        for ind, where in ((d.upstream, d.where), (d.downstream, None)):
            if where is None and ind.id not in plain:
                try:
                    _check_measurable(ind, tables, None)
                    plain[ind.id] = ind
                except _NotEstimable as e:
                    cache[(ind.id, None)] = str(e)
    try:
        cache.update(
            {(k, None): v for k, v in _many_values(list(plain.values()), tables, fw0).items()}
        )
    except Exception:
        pass

    def values(ind: Indicator, where: str | None) -> pd.DataFrame:
        key = (ind.id, where)
        if key not in cache:
            try:
                _check_measurable(ind, tables, where)
                cache[key] = _values(ind, tables, fw0, where)
            except _NotEstimable as e:
                cache[key] = str(e)
            except Exception as e:
                cache[key] = f"{ind.id} could not be computed: {e}"
        got = cache[key]
        if isinstance(got, str):
            raise _NotEstimable(got)
        return got

    rows: list[dict[str, Any]] = []
    effects: list[Effect] = []
    link_fits: dict[str, Effect] = {}
    bands: dict[str, pd.DataFrame] = {}
    for d in declared:
        lag = int(lags.get((d.upstream.id, d.downstream.id), d.lag))
        row: dict[str, Any] = {
            "link": d.name,
            "upstream": d.upstream.id,
            "downstream": d.downstream.id,
            "where": d.where,
            "lag": lag,
            "method": d.method,
            "upstream_label": d.upstream.label,
            "downstream_label": d.downstream.label,
            "upstream_level": d.upstream.level,
            "downstream_level": d.downstream.level,
            "expected_sign": _expected_sign(d.upstream, d.downstream),
            "confidence": level,
        }
        try:
            up = values(d.upstream, d.where)
            down = values(d.downstream, None)
            row["upstream_complete_share"], row["upstream_facilities"] = _complete_share(
                up, d.upstream
            )
            # columns named after the indicators, so that error messages name them
            u_col, d_col = d.upstream.id, d.downstream.id
            panel = up.rename(columns={"value": u_col, "variance": "up_var", "n": "up_n"}).merge(
                down[["facility_id", "round", "value"]].rename(columns={"value": d_col}),
                on=["facility_id", "round"],
                how="outer",
            )
            if cohorts is not None:
                panel["cohort"] = panel["facility_id"].map(cohorts)
            label = f"{d.upstream.label} → {d.downstream.label}"
            if d.method == "dose_response" and cohorts is None:
                # without the facilities table, a facility's CLM starts with its first record
                first = up.groupby("facility_id")["round"].min()
                panel["cohort"] = panel["facility_id"].map(first)
            # rounds as numbers, parsed once per label (the estimators accept any time axis)
            panel["t"] = _quarter_numbers(panel["round"])
            if "cohort" in panel:
                panel["cohort_t"] = _quarter_numbers(panel["cohort"])
            if d.method == "dose_response":
                res: EvaluationResult = dose_response(
                    panel,
                    u_col,
                    d_col,
                    time="t",
                    cohort="cohort_t",
                    lag=lag,
                    min_facilities=min_facilities,
                    level=level,
                    label=label,
                )
                bands[d.name] = res.bands  # type: ignore[attr-defined]
            else:
                has_var = bool(np.isfinite(panel["up_var"]).any())
                res = link_effect(
                    panel,
                    u_col,
                    d_col,
                    time="t",
                    cohort="cohort_t" if cohorts is not None else None,
                    lag=lag,
                    upstream_variance="up_var" if has_var else None,
                    min_facilities=min_facilities,
                    level=level,
                    label=label,
                )
        except (_NotEstimable, EvaluationError) as e:
            reason = _reader_reason(str(e), (d.upstream, d.downstream))
            row.update(
                status="not estimable",
                reason=reason,
                reason_kind=_reason_kind(reason),
                strength="not_estimable",
            )
            rows.append(row)
            continue
        eff = res.primary
        eff = Effect(
            d.name,
            eff.label,
            eff.estimate,
            eff.ci_low,
            eff.ci_high,
            eff.p_value,
            eff.scale,
            eff.se,
            eff.level,
        )
        effects.append(eff)
        link_fits[d.name] = eff
        diag = res.diagnostics
        std_lo, std_hi = diag["standardized_ci"]
        strength = _strength(eff, row["expected_sign"], (std_lo, std_hi))
        row.update(
            status="estimated",
            reason="",
            reason_kind="",
            estimate=eff.estimate,
            ci_low=eff.ci_low,
            ci_high=eff.ci_high,
            se=eff.se,
            p_value=eff.p_value,
            n_facilities=diag["n_facilities"],
            n_rounds=diag["n_rounds"],
            n_obs=res.n_obs,
            standardized=diag["standardized"],
            standardized_ci_low=std_lo,
            standardized_ci_high=std_hi,
            reliability=diag.get("reliability", math.nan),
            strength=strength,
            note=" ".join(res.notes),
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in (
        "reason",
        "estimate",
        "ci_low",
        "ci_high",
        "se",
        "p_value",
        "n_facilities",
        "n_rounds",
        "n_obs",
        "standardized",
        "standardized_ci_low",
        "standardized_ci_high",
        "reliability",
        "upstream_complete_share",
        "upstream_facilities",
        "note",
        "reason_kind",
    ):
        if col not in table:
            table[col] = "" if col in ("reason", "note") else np.nan
    if len(table):
        table["where"] = table["where"].astype(object).where(table["where"].notna(), None)
        table["q_value"] = benjamini_hochberg(table["p_value"].to_numpy(float))
        table["strength_label"] = table["strength"].map(STRENGTHS)
        table["statement"] = [_statement(r) for r in table.itertuples(index=False)]
        table["note"] = table["note"].fillna("")
        table["reason"] = table["reason"].fillna("")
    else:
        for col in ("q_value", "strength_label", "statement", "status", "strength"):
            table[col] = pd.Series(dtype=object)

    # ---------------------------------------------------------------- mediation
    med_rows: list[dict[str, Any]] = []
    clm_rows: dict[str, dict[str, Any]] = {}
    given = dict(clm_effects or {})
    if mediation and cohorts is not None:

        def clm_effect_of(ind: Indicator) -> Effect | None:
            if ind.id in given:
                return given[ind.id]
            if ind.id not in clm_rows:
                try:
                    eff, why = _clm_effect(values(ind, None), cohorts, level)
                except _NotEstimable as e:
                    eff, why = None, str(e)
                clm_rows[ind.id] = {
                    "indicator_id": ind.id,
                    "label": ind.label,
                    "estimate": eff.estimate if eff else math.nan,
                    "ci_low": eff.ci_low if eff else math.nan,
                    "ci_high": eff.ci_high if eff else math.nan,
                    "p_value": eff.p_value if eff else math.nan,
                    "se": eff.se if eff else math.nan,
                    "note": why,
                    "_effect": eff,
                }
            effect: Effect | None = clm_rows[ind.id]["_effect"]
            return effect

        for d in declared:
            if d.method != "within_facility" or d.where is not None or d.name not in link_fits:
                continue
            a = clm_effect_of(d.upstream)
            c = clm_effect_of(d.downstream)
            if a is None or c is None:
                continue
            b = link_fits[d.name]
            try:
                indirect, share, note = mediated_share(a, b, c, level=level, seed=seed)
            except EvaluationError as e:
                indirect, share, note = None, None, str(e)
            med_rows.append(
                {
                    "link": d.name,
                    "upstream": d.upstream.id,
                    "downstream": d.downstream.id,
                    "a_clm_on_upstream": a.estimate,
                    "b_link": b.estimate,
                    "c_clm_on_downstream": c.estimate,
                    "c_ci_low": c.ci_low,
                    "c_ci_high": c.ci_high,
                    "indirect": indirect.estimate if indirect else math.nan,
                    "indirect_ci_low": indirect.ci_low if indirect else math.nan,
                    "indirect_ci_high": indirect.ci_high if indirect else math.nan,
                    "share": share.estimate if share else math.nan,
                    "share_ci_low": share.ci_low if share else math.nan,
                    "share_ci_high": share.ci_high if share else math.nan,
                    "note": note,
                    "method": "product of coefficients (a·b / c), Monte Carlo interval",
                }
            )
    clm_table = pd.DataFrame(
        [{k: v for k, v in r.items() if k != "_effect"} for r in clm_rows.values()]
    )
    used = {
        i
        for pair in zip(table.get("upstream", []), table.get("downstream", []), strict=True)
        for i in pair
    }

    def not_collected(ind: Indicator) -> str:
        got = cache.get((ind.id, None))
        if got is None and ind.id in used:
            try:
                _check_measurable(ind, tables, None)
            except _NotEstimable as e:
                got = str(e)
        return got if isinstance(got, str) and _reason_kind(got) == "not collected" else ""

    indicators = pd.DataFrame(
        [
            {
                "id": i.id,
                "label": i.label,
                "level": i.level,
                "direction": i.direction,
                "dataset": i.dataset,
                "type": i.type,
                "unit": i.unit,
                "not_collected": not_collected(i),
            }
            for i in framework.indicators
            if i.id in used
        ]
    )
    notes = [
        f"{int((table['status'] == 'estimated').sum()) if len(table) else 0} of {len(table)} "
        "declared links estimated; q-values adjust for testing them all (Benjamini–Hochberg).",
        "A link is an association between indicators over time within facilities (or across "
        "facilities by CLM intensity); it supports a causal reading only under the assumptions "
        "stated in clm_research.evaluation.chain.",
    ]
    if cohorts is None:
        notes.append(
            "No facilities table: round effects only, so CLM's own effect on a downstream "
            "indicator is not separated from the link."
        )
    if med_rows:
        notes.append(
            "Shares of CLM's effect carried by a link: product of coefficients a·b / c (a, c: "
            "Callaway–Sant'Anna effects of CLM on the two indicators; b: the link), assuming no "
            "unmeasured confounding of the link given the fixed effects, no interaction between "
            "CLM and the intermediate, and stable effects over the rounds compared; Monte Carlo "
            "intervals treat a, b and c as independent."
        )
    return ChainResult(
        method="Results-chain analysis",
        effects=tuple(effects),
        diagnostics={
            "n_links": len(table),
            "n_estimated": int((table["status"] == "estimated").sum()) if len(table) else 0,
            "min_facilities": min_facilities,
            "time_effects": "cohort × round" if cohorts is not None else "round",
        },
        n_obs=int(table["n_obs"].fillna(0).sum()) if len(table) else 0,
        notes=tuple(notes),
        links=table,
        mediation=pd.DataFrame(med_rows),
        clm_effects=clm_table,
        dose_response=bands,
        indicators=indicators,
    )


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mag = abs(x)
    digits = 2 if mag >= 1 else max(2, 1 - int(math.floor(math.log10(mag))) + 1)
    return f"{x:.{min(digits, 6)}f}" if mag < 100 else f"{x:.0f}"


def _statement(r: Any) -> str:
    head = f"{r.upstream_label} → {r.downstream_label}"
    if r.status != "estimated":
        return f"{head}: not estimable ({r.reason})."
    lag_words = _lag_words(int(r.lag))
    return (
        f"{head} ({lag_words}): {_fmt(r.estimate)} per unit "
        f"({r.confidence:.0%} CI {_fmt(r.ci_low)} to "
        f"{_fmt(r.ci_high)}; {int(r.n_facilities)} facilities, {int(r.n_rounds)} rounds) — "
        f"{STRENGTHS[r.strength]}."
    )


def _lag_words(lag: int) -> str:
    return {0: "same round", 1: "the following quarter"}.get(lag, f"{lag} quarters later")


# ----------------------------------------------------------------------------- words
def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym (ART, CLM, HIV)."""
    first = text.split(" ", 1)[0]
    return text if first.isupper() else text[:1].lower() + text[1:]


def _category(where: Any) -> str | None:
    import re

    if not isinstance(where, str) or not where:
        return None
    m = re.fullmatch(r"\s*category\s*==\s*'([a-z_]+)'\s*", where)
    return m.group(1) if m else None


def _noun(result: ChainResult, indicator_id: str) -> str:
    """The indicator as the subject of "rose" / "fell": "the share of …" for proportions."""
    ind = result.indicators.set_index("id") if len(result.indicators) else None
    if ind is None or indicator_id not in ind.index:
        return indicator_id
    label = _lower_first(str(ind.loc[indicator_id, "label"]))
    return f"the share of {label}" if ind.loc[indicator_id, "type"] == "proportion" else label


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _timing(lag: int) -> str:
    return "in the same round" if lag == 0 else _lag_words(lag)


_BREAK = "\u2029"  # paragraph separator between the parts of the generated text


def chain_paragraph(result: ChainResult) -> str:
    """A paragraph saying where the chain holds and where it breaks, generated from the result.

    In the style of: "Issues about stock-outs were resolved at 61% of the facilities that
    raised them, and where they were resolved, the share of ART clients who could not get all
    their medicines fell the following quarter … Mean waiting time improved with CLM, but
    treatment interruptions did not follow."

    Parameters
    ----------
    result
        A :class:`ChainResult`.

    Returns
    -------
    str
        Plain sentences in paragraphs (separated by a blank line): how many links could be
        tested and how many hold; the monitoring (dose–response) links; each issue category's resolution and its service; which
        services the impact indicators followed and where they did not; the share of CLM's
        effect carried by each holding link; and the links not tested, with "not collected"
        where a table is missing.
    """
    t = result.links
    if t.empty:
        return "The framework declares no links between indicators, so the chain was not tested."
    clm = (
        result.clm_effects.set_index("indicator_id").to_dict("index")
        if len(result.clm_effects)
        else {}
    )
    ind = result.indicators.set_index("id") if len(result.indicators) else pd.DataFrame()
    est = t[t["status"] == "estimated"]
    n_hold = int(est["strength"].isin(HOLDS).sum())
    parts: list[str] = []
    if len(est) == 0:
        parts.append(
            f"None of the {len(t)} links of the results chain could be tested with these data."
        )
    else:
        lead = (
            f"Of the {len(t)} links of the results chain, {len(est)} could be tested: {n_hold} "
            + ("holds" if n_hold == 1 else "hold")
        )
        if len(est) > n_hold:
            lead += (
                f" and {len(est) - n_hold} {'does' if len(est) - n_hold == 1 else 'do'} not "
                "(the chain breaks or cannot be confirmed there)"
            )
        parts.append(lead + ".")

    def kind(r: Any) -> str:
        if r.method == "dose_response":
            return "dose"
        up_ds = ind.loc[r.upstream, "dataset"] if r.upstream in ind.index else ""
        down_ds = ind.loc[r.downstream, "dataset"] if r.downstream in ind.index else ""
        if _category(r.where) and up_ds == "issues":
            return "category"
        if up_ds == down_ds:
            return "same"
        return "service"

    kinds = [kind(r) for r in _rows(est)]
    est = est.assign(_kind=kinds)
    parts.append(_BREAK)
    # monitoring intensity: one sentence per upstream activity
    for _up, grp in est[est["_kind"] == "dose"].groupby("upstream", sort=False):
        held = [
            f"{'more' if r.estimate > 0 else 'fewer'} {_lower_first(r.downstream_label)}"
            for r in _rows(grp)
            if r.strength in HOLDS
        ]
        other = [_lower_first(r.downstream_label) for r in _rows(grp) if r.strength not in HOLDS]
        up_text = _lower_first(grp["upstream_label"].iloc[0])
        if held:
            text = f"Facilities with more {up_text} had {_join(held)}"
            if other:
                text += f", but not measurably different {_join(other)}"
        else:
            text = (
                f"Facilities with more {up_text} did not have measurably different {_join(other)}"
            )
        parts.append(text + ".")
    # links within one dataset (e.g. agreed actions → resolution, same issues)
    for r in _rows(est[est["_kind"] == "same"]):
        up, down = _lower_first(r.upstream_label), _noun(result, r.downstream)
        if r.strength in HOLDS:
            way = "higher" if r.estimate > 0 else "lower"
            parts.append(f"Where there were more {up}, {down} was {way} {_timing(int(r.lag))}.")
        else:
            parts.append(f"More {up} did not go with a measurably different {down}.")
    # resolution of each issue category → its service
    clauses = []
    for r in _rows(est[est["_kind"] == "category"]):
        cat = _category(r.where) or ""
        words = _CATEGORY_WORDS.get(cat, cat.replace("_", " "))
        share = r.upstream_complete_share
        at = (
            f"were all resolved at {share:.0%} of the facilities that raised them"
            if np.isfinite(share)
            else "were resolved"
        )
        text = f"issues about {words} {at}"
        down = _noun(result, r.downstream)
        timing = _timing(int(r.lag))
        if r.strength in HOLDS:
            text += f", and where they were resolved, {down} {'rose' if r.estimate > 0 else 'fell'} {timing}"
        elif r.strength == "opposite":
            text += f", but where they were resolved, {down} moved the wrong way {timing}"
        else:
            text += f", but {down} did not measurably improve {timing}"
        clauses.append(text)
    if clauses:
        joined = "; ".join(clauses)
        parts.append(joined[:1].upper() + joined[1:] + ".")
    parts.append(_BREAK)
    # services → impact, grouped by the downstream indicator
    for down_id, grp in est[est["_kind"] == "service"].groupby("downstream", sort=False):
        down_text = _noun(result, str(down_id))
        down_text = down_text[:1].upper() + down_text[1:]
        held = [_lower_first(r.upstream_label) for r in _rows(grp) if r.strength in HOLDS]
        sentences = []
        if held:
            lag = int(grp["lag"].iloc[0])
            sentences.append(f"{down_text} followed changes in {_join(held)} {_timing(lag)}")
        for r in _rows(grp):
            if r.strength in HOLDS:
                continue
            up = _lower_first(r.upstream_label)
            a = clm.get(r.upstream)
            change = ""
            if a is not None and np.isfinite(a.get("p_value", math.nan)) and a["p_value"] < 0.05:
                better = (a["estimate"] > 0) == (
                    ind.loc[r.upstream, "direction"] == "higher_is_better"
                )
                change = "improved" if better else "worsened"
            follow = "moved the wrong way" if r.strength == "opposite" else "did not follow"
            if change:
                sentences.append(f"{up} {change} with CLM, but {_lower_first(down_text)} {follow}")
            else:
                sentences.append(f"{_lower_first(down_text)} did not follow {up}")
        text = "; ".join(sentences)
        parts.append(text[:1].upper() + text[1:] + ".")
    parts.append(_BREAK)
    # mediation: the share of CLM's effect carried by each holding link
    med = result.mediation
    if len(med):
        holding = set(est.loc[est["strength"].isin(HOLDS), "link"])
        shown = med[np.isfinite(med["share"].to_numpy(float)) & med["link"].isin(holding)]
        for down, grp in shown.groupby("downstream", sort=False):
            bits = [
                f"{r.share:.0%} (95% CI {r.share_ci_low:.0%} to {r.share_ci_high:.0%}) through "
                f"{_lower_first(_label(result, r.upstream))}"
                for r in _rows(grp)
            ]
            parts.append(
                f"Of CLM's effect on {_lower_first(_label(result, str(down)))}, about {_join(bits)}."
            )
    parts.append(_BREAK)
    miss = t[t["status"] != "estimated"]
    collected = miss[miss["reason_kind"] == "not collected"]
    if len(collected):
        what = sorted({str(r) for r in collected["reason"]})
        parts.append(
            f"{len(collected)} link{'s' if len(collected) > 1 else ''} could not be tested "
            f"(not collected: {'; '.join(w.removeprefix('not collected: ') for w in what)})."
        )
    short = miss[miss["reason_kind"] == "insufficient data"]
    if len(short):
        names = [
            f"{_lower_first(r.upstream_label)} → {_lower_first(r.downstream_label)}"
            for r in _rows(short)
        ]
        parts.append(f"Too little data to test: {_join(names)}.")
    # one paragraph per part of the chain (Markdown: a blank line between paragraphs)
    groups = " ".join(parts).split(_BREAK)
    return "\n\n".join(g.strip() for g in groups if g.strip())


def _label(result: ChainResult, indicator_id: str) -> str:
    ind = result.indicators
    if len(ind) and indicator_id in set(ind["id"]):
        return str(ind.set_index("id").loc[indicator_id, "label"])
    return indicator_id


# ----------------------------------------------------------------------------- diagram
#: Box colours by status (fill, edge); other statuses are drawn white with a grey edge.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "green": ("#c8e6c9", "#2e7d32"),
    "amber": ("#ffe082", "#b26a00"),
    "red": ("#ffcdd2", "#c62828"),
    "on track": ("#c8e6c9", "#2e7d32"),
    "off track": ("#ffcdd2", "#c62828"),
    "insufficient data": ("#eeeeee", "#757575"),
}

#: A box whose indicator's table or column is absent: grey fill, dotted grey edge.
NOT_COLLECTED_BOX = ("#eeeeee", "#8a8a8a")

#: How a link is drawn, by its key (:func:`_link_key`): colour, line style, legend words.
LINK_STYLES: dict[str, tuple[str, Any, str]] = {
    "strong": ("#1f4e79", "-", "holds: strong evidence (p < 0.01)"),
    "moderate": ("#4a86c5", "-", "holds: evidence (p < 0.05)"),
    "opposite": ("#7b1fa2", "--", "✕ breaks: unexpected direction"),
    "none": ("#c62828", "--", "✕ breaks: no link (effects ruled out)"),
    "inconclusive": ("#c62828", (0, (4, 2, 1, 2)), "✕ breaks: no evidence of a link"),
    "not_estimable": ("#6d6d6d", ":", "not tested: too little data"),
    "not_collected": ("#9e9e9e", (0, (1, 3)), "not tested: not collected"),
}

#: Geometry of the diagram, in inches (drawn at :data:`CHAIN_WIDTH_IN` wide).
CHAIN_WIDTH_IN = 7.0
_MARGIN = 0.06
_PAD = 0.06  # text to box edge
_VGAP = 0.16  # between boxes of one column
_LANE_MIN, _LANE_MAX = 0.42, 0.8  # between columns: arrows and their numbered markers
_MARKER_R = 0.1
_HEADER_H = 0.32


def _unbreakable(label: str) -> str:
    """Keep a number with its unit and a comparison sign with its number when wrapping
    ("3 months", "< 1000"): no-break spaces, which textwrap does not split at."""
    import re

    label = re.sub(r"([<>≤≥]) (\d)", "\\1\u00a0\\2", label)
    return re.sub(r"(\d) ([a-z])", "\\1\u00a0\\2", label)


def _link_key(r: Any) -> str:
    """The drawing style of a link: its strength, or why it was not tested."""
    if r.status == "estimated":
        return str(r.strength)
    return "not_collected" if r.reason_kind == "not collected" else "not_estimable"


def _shown_links(result: ChainResult, structural: bool) -> pd.DataFrame:
    t = result.links
    if t.empty or structural:
        return t
    return t[t["reason_kind"] != "not per facility and round"]


def _columns(result: ChainResult, links: pd.DataFrame) -> tuple[list[list[str]], list[str]]:
    """Boxes by column, top to bottom, and each column's level.

    Levels are columns; a level whose indicators feed each other is split into sub-columns
    (sources left, sinks right) so every arrow runs left to right; boxes are ordered within a
    column by the mean rank of their neighbours (barycentre heuristic).
    """
    from clm_research.framework import LEVELS

    ind = result.indicators
    used = set(links["upstream"]) | set(links["downstream"]) if len(links) else set()
    order = [i for i in (ind["id"] if len(ind) else []) if i in used]
    level_of = dict(zip(ind["id"], ind["level"], strict=True)) if len(ind) else {}
    edges = (
        [(a, b) for a, b in zip(links["upstream"], links["downstream"], strict=True)]
        if len(links)
        else []
    )
    same = [(a, b) for a, b in edges if level_of.get(a) == level_of.get(b)]
    # height above the level's sinks: sinks sit in the last sub-column, next to the next level
    height = {i: 0 for i in order}
    for _ in range(len(order)):
        changed = False
        for a, b in same:
            if a in height and b in height and height[a] < height[b] + 1 <= len(order):
                height[a] = height[b] + 1
                changed = True
        if not changed:
            break
    cols: list[list[str]] = []
    col_level: list[str] = []
    for level in LEVELS:
        members = [i for i in order if level_of.get(i) == level]
        if not members:
            continue
        n_sub = max(height[i] for i in members) + 1
        for sub in range(n_sub):
            cols.append([i for i in members if height[i] == n_sub - 1 - sub])
            col_level.append(level)
    neighbours: dict[str, list[str]] = {i: [] for i in order}
    for a, b in edges:
        if a in neighbours and b in neighbours:
            neighbours[a].append(b)
            neighbours[b].append(a)
    rank = {i: float(k) for c in cols for k, i in enumerate(c)}
    for sweep in range(6):
        seq = cols if sweep % 2 == 0 else cols[::-1]
        for members in seq:
            centre = {
                i: float(np.mean([rank[j] for j in neighbours[i]])) if neighbours[i] else rank[i]
                for i in members
            }
            members.sort(key=lambda i: centre[i])
            for k, i in enumerate(members):
                rank[i] = float(k) - (len(members) - 1) / 2
    return cols, col_level


def _numbered(links: pd.DataFrame, cols: list[list[str]]) -> pd.DataFrame:
    """The links in reading order (left to right, top to bottom), numbered from 1."""
    where = {i: (c, k) for c, members in enumerate(cols) for k, i in enumerate(members)}
    if links.empty:
        return links.assign(number=pd.Series(dtype=int))
    keys = [
        (*where.get(u, (99, 99)), *where.get(d, (99, 99)), str(w or ""))
        for u, d, w in zip(links["upstream"], links["downstream"], links["where"], strict=True)
    ]
    order = sorted(range(len(links)), key=lambda k: keys[k])
    out = links.iloc[order].copy()
    out["number"] = range(1, len(out) + 1)
    return out.reset_index(drop=True)


def chain_link_numbers(result: ChainResult, *, structural: bool = False) -> pd.DataFrame:
    """The links drawn in the diagram, in reading order, with the ``number`` shown on each
    (the same numbers label the rows of :func:`plot_chain_links`)."""
    links = _shown_links(result, structural)
    cols, _ = _columns(result, links)
    return _numbered(links, cols)


class _Measure:
    """Text extents in inches from a matplotlib renderer (the figure's own)."""

    def __init__(self, fig: Figure) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        self.fig = fig
        self.renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]

    def size(self, text: str, fontsize: float, weight: str = "normal") -> tuple[float, float]:
        t = self.fig.text(0, 0, text, fontsize=fontsize, fontweight=weight)
        bb = t.get_window_extent(self.renderer)
        t.remove()
        return bb.width / self.fig.dpi, bb.height / self.fig.dpi

    def words(self, label: str, fontsize: float) -> tuple[list[str], list[float], float]:
        """The label's words (split at plain spaces only), their widths and a space's width."""
        words = label.split(" ")
        space = self.size("a a", fontsize)[0] - self.size("aa", fontsize)[0]
        return words, [self.size(w, fontsize)[0] for w in words], space

    def wrap(self, label: str, width: float, fontsize: float) -> tuple[str, float, float]:
        """``label`` wrapped greedily by measured word widths to ``width`` inches, with its
        measured width and height (falls back to :meth:`fit` if kerning makes it wider)."""
        words, widths, space = self.words(label, fontsize)
        n_lines = len(_greedy_lines(words, widths, space, width))
        # balanced: the narrowest width that keeps as few lines (no lone last word)
        narrow = min(
            (
                w
                for w in _break_widths(words, widths, space)
                if w <= width and len(_greedy_lines(words, widths, space, w)) == n_lines
            ),
            default=width,
        )
        text = "\n".join(_greedy_lines(words, widths, space, narrow))
        w, h = self.size(text, fontsize)
        return (text, w, h) if w <= width + 1e-3 else self.fit(label, width, fontsize)

    def fit(self, label: str, width: float, fontsize: float) -> tuple[str, float, float]:
        """``label`` wrapped between words to at most ``width`` inches (the longest word
        alone may be wider), with its measured width and height."""
        seen: set[str] = set()
        best: tuple[str, float, float] | None = None
        for chars in range(max(len(label), 1), 0, -1):
            text = "\n".join(
                textwrap.wrap(label, chars, break_on_hyphens=False, break_long_words=False)
            )
            if text in seen:
                continue
            seen.add(text)
            w, h = self.size(text, fontsize)
            best = (text, w, h)
            if w <= width:
                return best
        assert best is not None
        return best


def _break_widths(words: Sequence[str], widths: Sequence[float], space: float) -> list[float]:
    """The widths of every run of consecutive words: the widths at which wrapping changes."""
    out = []
    for a in range(len(words)):
        run = 0.0
        for b in range(a, len(words)):
            run += widths[b] + (space if b > a else 0.0)
            out.append(run)
    return out


def _greedy_lines(
    words: Sequence[str], widths: Sequence[float], space: float, width: float
) -> list[str]:
    """Words filled into lines of at most ``width`` (a word wider than that has its own line)."""
    lines: list[list[str]] = []
    current = 0.0
    for word, w in zip(words, widths, strict=True):
        if lines and current + space + w <= width:
            lines[-1].append(word)
            current += space + w
        else:
            lines.append([word])
            current = w
    return [" ".join(line) for line in lines]


def _pack(tops: list[float], heights: list[float], gap: float, total: float) -> list[float]:
    """Move boxes of one column as little as possible from ``tops`` (distance from the top)
    so that they keep their order, ``gap`` apart, within ``[0, total]``."""
    t = list(tops)
    n = len(t)
    for i in range(n):
        t[i] = max(t[i], 0.0 if i == 0 else t[i - 1] + heights[i - 1] + gap)
    for i in reversed(range(n)):
        t[i] = min(t[i], total - heights[i] if i == n - 1 else t[i + 1] - gap - heights[i])
    for i in range(n):
        t[i] = max(t[i], 0.0 if i == 0 else t[i - 1] + heights[i - 1] + gap)
    return t


def _column_widths(
    measure: _Measure,
    cols: list[list[str]],
    labels: Mapping[str, str],
    width: float,
    size: float,
    crossing: Sequence[int] = (),
) -> tuple[list[float], list[float]]:
    """Box width of each column and the width of each lane between columns.

    A lane is wider when many links cross it (``crossing``: links leaving each column), so
    that each link's numbered marker finds a free spot on its arrow.

    Each column starts as wide as its longest word; the rest of the width goes, step by step,
    where it saves the most height per inch: first to the column with the tallest stack of
    boxes (it sets the figure's height), then to boxes with many lines. The number of lines of
    a label at a width is estimated from its one-line width (wrapping loses a little at word
    ends); the labels are wrapped and measured exactly afterwards.
    """
    n = len(cols)
    words = {i: measure.words(labels[i], size) for c in cols for i in c}
    line_h = measure.size("Ag\nAg", size)[1] - measure.size("Ag", size)[1]
    least = [max((max(words[i][1]) for i in members), default=0.3) + 2 * _PAD for members in cols]
    lanes = [
        min(_LANE_MAX, _LANE_MIN + 0.03 * max(0, (crossing[k] if k < len(crossing) else 0) - 10))
        for k in range(n - 1)
    ]
    avail = width - 2 * _MARGIN - sum(lanes)
    if sum(least) >= avail:
        return [w * avail / sum(least) for w in least], lanes

    def lines(i: str, w: float) -> int:
        return len(_greedy_lines(*words[i], w - 2 * _PAD))

    def stack(c: int, w: float) -> float:
        return sum(lines(i, w) * line_h + 2 * _PAD for i in cols[c]) + _VGAP * (len(cols[c]) - 1)

    def cost(ws: Sequence[float]) -> float:
        stacks = [stack(c, w) for c, w in enumerate(ws)]
        return max(stacks) + 0.3 * sum(stacks) / n

    widths = list(least)
    budget = avail - sum(widths)
    while budget > 1e-6:
        base = cost(widths)
        best: tuple[float, int, float] | None = None
        for c, members in enumerate(cols):
            # the widths at which one of the column's labels would lose a line
            steps = {
                wanted + 2 * _PAD + 1e-4
                for i in members
                for wanted in _break_widths(*words[i])
                if wanted + 2 * _PAD > widths[c] + 1e-4
            }
            for w in sorted(steps)[:12]:
                if w - widths[c] > budget or w > 2.4:
                    break
                trial = [*widths[:c], w, *widths[c + 1 :]]
                gain = (base - cost(trial)) / (w - widths[c])
                if gain > 1e-9 and (best is None or gain > best[0]):
                    best = (gain, c, w)
        if best is None:
            break
        _, c, w = best
        budget -= w - widths[c]
        widths[c] = w
    if n > 1:
        # what is left widens the lanes (arrows at a gentler slope), then the boxes
        extra = min(_LANE_MAX - min(lanes), budget / (n - 1))
        grown = [min(_LANE_MAX, lane + extra) for lane in lanes]
        budget -= sum(grown) - sum(lanes)
        lanes = grown
    return [w + budget / n for w in widths], lanes


def on_line_point(xa: float, ya: float, xb: float, yb: float, x: float) -> tuple[float, float]:
    """The point of the segment from (xa, ya) to (xb, yb) at abscissa ``x`` (clamped)."""
    t = min(max((x - xa) / (xb - xa), 0.0), 1.0) if xb != xa else 0.5
    return xa + t * (xb - xa), ya + t * (yb - ya)


def _marker_spot(
    xa: float,
    ya: float,
    xb: float,
    yb: float,
    length: float,
    boxes: Iterable[tuple[float, float, float, float]],
    placed: Sequence[tuple[float, float]],
) -> tuple[float, float, bool]:
    """Where a link's numbered marker goes: on the arrow, clear of every box, of the other
    markers and of the arrow head, nearest the arrow's middle; when the arrow has no such
    spot, beside it (above or below, for a leader line); else the least crowded spot."""
    boxes = list(boxes)
    r = _MARKER_R

    def clashes(cx: float, cy: float) -> int:
        hit = sum(
            cx + r > bx - 0.02
            and cx - r < bx + bw + 0.02
            and cy + r > by - 0.02
            and cy - r < by + bh + 0.02
            for bx, by, bw, bh in boxes
        )
        # markers kept apart as squares: their bounding boxes never overlap either
        near = sum(max(abs(cx - px), abs(cy - py)) < 2 * r + 0.03 for px, py in placed)
        return hit + near

    lo, hi = r + 0.04, length - r - 0.14
    steps = [lo + (hi - lo) * k / 16 for k in range(17)] if hi > lo else [length / 2]
    steps.sort(key=lambda s: abs(s - length * 0.45))
    on = [
        (xa + (xb - xa) * s / max(length, 1e-9), ya + (yb - ya) * s / max(length, 1e-9))
        for s in steps
    ]
    for cx, cy in on:
        if not clashes(cx, cy):
            return cx, cy, True
    for dy in (k * sign * 2.3 * r for k in range(1, 7) for sign in (1, -1)):
        for cx, cy in on:
            if not clashes(cx, cy + dy):
                return cx, cy + dy, False
    cx, cy = min(on, key=lambda p: clashes(*p))
    return cx, cy, True


def plot_chain(
    result: ChainResult,
    status: Mapping[str, str] | None = None,
    *,
    ax: Axes | None = None,
    width: float = CHAIN_WIDTH_IN,
    fontsize: float = 9.0,
    status_title: str = "status",
    structural: bool = False,
) -> Figure:
    """Draw the results chain: levels as columns, indicators as boxes, links as arrows.

    Boxes are coloured by ``status`` (indicator id → ``green``/``amber``/``red`` or a progress
    verdict such as ``on track``); an indicator whose table or column is absent is a grey box
    marked *not collected*. Links are drawn by their strength: solid where the chain holds
    (wider for a larger standardised effect), dashed in red and listed as breaking where it
    breaks or cannot be confirmed, dotted where the link could not be tested (finer and lighter
    when the data were not collected). Each link carries a number: :func:`plot_chain_links`
    draws the estimate and confidence interval of each numbered link.

    The figure is sized from its content: ``width`` inches wide (the printed width), columns as
    wide as their labels need, labels wrapped between words to their box, boxes stacked
    without overlap and the height following the column with the most boxes; every text is
    ``fontsize`` points or larger at that size.

    Parameters
    ----------
    result
        A :class:`ChainResult`.
    status
        Progress status by indicator id (optional; boxes without one are white).
    ax
        Axes to draw on (its figure is resized to the diagram); a new figure when omitted.
    width
        Width of the figure in inches.
    fontsize
        Size of the text in the boxes, markers and legend (points); level names are larger.
    status_title
        What the box colours mean in the legend (e.g. ``status in 2024Q4``).
    structural
        Also draw links that no facility × round data can test (indicators measured per
        organisation or outreach site); hidden by default, and counted in the alt text.

    Returns
    -------
    matplotlib.figure.Figure
        Artists carry ids for checks: ``box:<indicator>``, ``label:<indicator>``,
        ``level:<level>``, ``marker:<number>``, ``number:<number>``, ``arrow:<number>``,
        ``legend``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch

    status = {k: str(v) for k, v in (status or {}).items()}
    shown = _shown_links(result, structural)
    cols, col_level = _columns(result, shown)
    links = _numbered(shown, cols)
    ind = result.indicators
    labels = dict(zip(ind["id"], ind["label"], strict=True)) if len(ind) else {}
    missing: dict[str, str] = {}
    if len(ind) and "not_collected" in ind:
        missing = {
            str(i): str(r) for i, r in zip(ind["id"], ind["not_collected"], strict=True) if r
        }
    text_of = {i: _unbreakable(labels.get(i, i)) for c in cols for i in c}

    # axes given: drawn on their figure (matplotlib types it Figure | SubFigure)
    fig: Figure = ax.figure if ax is not None else Figure()  # type: ignore[assignment]
    fig.set_size_inches(width, 3.0)
    measure = _Measure(fig)
    col_of = {i: c for c, members in enumerate(cols) for i in members}
    crossing = [0] * len(cols)
    for u in links["upstream"] if len(links) else []:
        if u in col_of:
            crossing[col_of[u]] += 1
    widths, lanes = _column_widths(measure, cols, text_of, width, fontsize, crossing)
    # wrapped labels and box heights
    wrapped: dict[str, str] = {}
    box_h: dict[str, float] = {}
    for c, members in enumerate(cols):
        for i in members:
            label = text_of[i] + (" (not collected)" if i in missing else "")
            text, _, h = measure.wrap(label, widths[c] - 2 * _PAD, fontsize)
            wrapped[i], box_h[i] = text, h + 2 * _PAD
    stack = [sum(box_h[i] for i in m) + _VGAP * (len(m) - 1) for m in cols]
    body = max(stack, default=0.5)
    # vertical positions: each column centred, then drawn toward its neighbours' mean height
    top: dict[str, float] = {}
    for c, members in enumerate(cols):
        t = (body - stack[c]) / 2
        for i in members:
            top[i] = t
            t += box_h[i] + _VGAP
    neighbours: dict[str, list[str]] = {i: [] for i in top}
    for u, d in zip(links["upstream"], links["downstream"], strict=True) if len(links) else []:
        if u in top and d in top:
            neighbours[u].append(d)
            neighbours[d].append(u)
    for sweep in range(4):
        seq = list(enumerate(cols)) if sweep % 2 == 0 else list(enumerate(cols))[::-1]
        for _c, members in seq:
            want = []
            for i in members:
                if neighbours[i]:
                    mid = float(np.mean([top[j] + box_h[j] / 2 for j in neighbours[i]]))
                    want.append(mid - box_h[i] / 2)
                else:
                    want.append(top[i])
            packed = _pack(want, [box_h[i] for i in members], _VGAP, body)
            top.update(zip(members, packed, strict=True))

    # the legend: link styles and box colours present
    keys = [k for k in LINK_STYLES if len(links) and k in {_link_key(r) for r in _rows(links)}]
    handles: list[Any] = []
    for k in keys:
        colour, style, words = LINK_STYLES[k]
        lw = 2.6 if k == "strong" else 1.8 if k == "moderate" else 1.4
        handles.append(Line2D([], [], color=colour, linestyle=style, lw=lw, label=words))
    drawn = {i: status.get(i) for i in top}
    for name in dict.fromkeys(s for i, s in drawn.items() if s and i not in missing):
        face, edge = STATUS_COLOURS.get(name.lower(), ("white", "#757575"))
        handles.append(Patch(facecolor=face, edgecolor=edge, label=f"{status_title}: {name}"))
    if any(s is None and i not in missing for i, s in drawn.items()):
        handles.append(Patch(facecolor="white", edgecolor="#757575", label=f"{status_title}: none"))
    if missing:
        face, edge = NOT_COLLECTED_BOX
        handles.append(
            Patch(facecolor=face, edgecolor=edge, linestyle=":", label="indicator not collected")
        )
    legend_rows = math.ceil(len(handles) / 2)
    line_h = fontsize * 1.45 / 72
    legend_h = legend_rows * line_h + 0.12
    height = _MARGIN + _HEADER_H + body + 0.22 + legend_h + _MARGIN
    fig.set_size_inches(width, height)
    if ax is None:
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    else:
        ax.set_position((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    y0 = height - _MARGIN - _HEADER_H  # top of the boxes

    # columns' x and the level names
    x_left: list[float] = []
    x = _MARGIN
    for c, w in enumerate(widths):
        x_left.append(x)
        x += w + (lanes[c] if c < len(lanes) else 0.0)
    spans: dict[str, list[int]] = {}
    for c, level in enumerate(col_level):
        spans.setdefault(level, []).append(c)
    for level, cs in spans.items():
        left, right = x_left[cs[0]], x_left[cs[-1]] + widths[cs[-1]]
        ax.text(
            (left + right) / 2,
            height - _MARGIN - _HEADER_H / 2,
            level.capitalize(),
            ha="center",
            va="center",
            fontsize=fontsize + 1.5,
            fontweight="bold",
            gid=f"level:{level}",
        )
    # boxes
    rect: dict[str, tuple[float, float, float, float]] = {}  # x0, y0 (bottom), w, h
    for c, members in enumerate(cols):
        for i in members:
            h = box_h[i]
            bx, by = x_left[c], y0 - top[i] - h
            rect[i] = (bx, by, widths[c], h)
            st = drawn.get(i)
            face, edge = ("white", "#757575")
            style = "-"
            if i in missing:
                (face, edge), style = NOT_COLLECTED_BOX, ":"
            elif st:
                face, edge = STATUS_COLOURS.get(st.lower(), (face, edge))
            ax.add_patch(
                FancyBboxPatch(
                    (bx, by),
                    widths[c],
                    h,
                    boxstyle="round,pad=0,rounding_size=0.05",
                    facecolor=face,
                    edgecolor=edge,
                    linewidth=1.2,
                    linestyle=style,
                    zorder=3,
                    gid=f"box:{i}",
                )
            )
            ax.text(
                bx + widths[c] / 2,
                by + h / 2,
                wrapped[i],
                ha="center",
                va="center",
                fontsize=fontsize,
                zorder=4,
                gid=f"label:{i}",
                color="#555555" if i in missing else "black",
                fontstyle="italic" if i in missing else "normal",
            )
    # ports: the arrows leaving (entering) a box are spread down its right (left) edge
    port_out: dict[int, float] = {}
    port_in: dict[int, float] = {}
    drawable = [r for r in _rows(links)] if len(links) else []
    drawable = [r for r in drawable if r.upstream in rect and r.downstream in rect]

    def centre_y(i: str) -> float:
        return rect[i][1] + rect[i][3] / 2

    for own, other, ports in (
        ("upstream", "downstream", port_out),
        ("downstream", "upstream", port_in),
    ):
        by_box: dict[str, list[Any]] = {}
        for r in drawable:
            by_box.setdefault(getattr(r, own), []).append(r)
        for i, rs in by_box.items():
            rs.sort(key=lambda r: (-centre_y(getattr(r, other)), r.number))
            bx, by, bw, bh = rect[i]
            for slot, r in enumerate(rs):
                ports[int(r.number)] = by + bh * (0.85 - 0.7 * (slot + 1) / (len(rs) + 1))
    # arrows, then their numbered markers where they overlap nothing
    placed: list[tuple[float, float]] = []
    for r in drawable:
        n = int(r.number)
        key = _link_key(r)
        colour, style, _ = LINK_STYLES[key]
        lw = 1.3
        if key in HOLDS and np.isfinite(r.standardized):
            lw = 1.4 + 2.6 * min(abs(float(r.standardized)), 1.0)
        xa = rect[r.upstream][0] + rect[r.upstream][2]
        xb = rect[r.downstream][0]
        ya, yb = port_out[n], port_in[n]
        ax.add_patch(
            FancyArrowPatch(
                (xa, ya),
                (xb, yb),
                arrowstyle="-|>",
                mutation_scale=9 + lw,
                color=colour,
                linestyle=style,
                linewidth=lw,
                shrinkA=0,
                shrinkB=0,
                zorder=2,
                gid=f"arrow:{n}",
            )
        )
        length = math.hypot(xb - xa, yb - ya)
        cx, cy, on_line = _marker_spot(xa, ya, xb, yb, length, rect.values(), placed)
        placed.append((cx, cy))
        if not on_line:
            # no free spot on the arrow itself: the marker sits beside it, on a leader line
            sx, sy = on_line_point(xa, ya, xb, yb, cx)
            ax.plot([sx, cx], [sy, cy], color=colour, linewidth=0.8, zorder=4)
        holds = key in HOLDS
        ax.add_patch(
            Circle(
                (cx, cy),
                _MARKER_R,
                facecolor=colour if holds else "white",
                edgecolor=colour,
                linewidth=1.2,
                zorder=5,
                gid=f"marker:{n}",
            )
        )
        ax.text(
            cx,
            cy,
            str(n),
            ha="center",
            va="center_baseline",
            fontsize=fontsize,
            fontweight="bold",
            color="white" if holds else colour,
            zorder=6,
            gid=f"number:{n}",
        )
    if handles:
        leg = ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(width / 2, _MARGIN + legend_h),
            bbox_transform=ax.transData,
            ncol=2,
            fontsize=fontsize,
            frameon=False,
            handlelength=2.6,
            columnspacing=1.2,
            borderaxespad=0.0,
            borderpad=0.0,
        )
        leg.set_gid("legend")
    return fig


def plot_chain_links(
    result: ChainResult,
    *,
    width: float = CHAIN_WIDTH_IN,
    fontsize: float = 9.0,
    structural: bool = False,
) -> Figure:
    """The estimate and confidence interval of every link of :func:`plot_chain`, by number.

    One row per link drawn in the diagram: its number and words (with the issue category),
    then its standardised effect — the change in the downstream indicator, in its
    within-facility standard deviations, per standard deviation of the upstream — turned so
    that positive means progress carried through (a fall in stock-outs after issues were
    resolved counts as positive), with its confidence interval; links not tested show the
    reason in short ("not collected: no issues table", "not tested: too little data").
    Standardised effects put links between indicators in different units on one scale.

    Returns
    -------
    matplotlib.figure.Figure
        Row texts carry the ids ``row:<number>`` (and ``reason:<number>``), the chart ``axes``.
    """
    from matplotlib.figure import Figure

    links = chain_link_numbers(result, structural=structural)
    fig = Figure(figsize=(width, 2.0))
    measure = _Measure(fig)
    left_w = width * 0.55
    num_w = 0.3
    chart_x0 = left_w + 0.15
    chart_w = width - chart_x0 - 0.2
    rows = []
    for r in _rows(links) if len(links) else []:
        label = f"{r.upstream_label} → {r.downstream_label}"
        cat = _category(r.where)
        if cat:
            label = (
                f"{r.upstream_label} (issues about {_CATEGORY_WORDS.get(cat, cat)}) → "
                f"{r.downstream_label}"
            )
        text, _, h = measure.wrap(label, left_w - num_w - _MARGIN, fontsize)
        reason = ""
        if r.status != "estimated":
            # the short reason (the alt text and the report's list give the whole one)
            why = str(r.reason)
            if not why.startswith("not collected"):
                why = "not tested: too little data"
            reason, _, h2 = measure.wrap(why, chart_w - 0.1, fontsize)
            h = max(h, h2)
        rows.append((r, text, reason, h + 0.1))
    body = sum(h for *_, h in rows) or 0.4
    bottom = 0.75  # ticks and the axis label
    height = _MARGIN + body + bottom
    fig.set_size_inches(width, height)
    bg = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    bg.set_xlim(0, width)
    bg.set_ylim(0, height)
    bg.axis("off")
    chart = fig.add_axes(
        (chart_x0 / width, bottom / height, chart_w / width, body / height), gid="axes"
    )
    chart.set_ylim(body, 0)
    chart.set_yticks([])
    chart.patch.set_alpha(0.0)  # the row bands show through
    for spine in ("left", "right", "top"):
        chart.spines[spine].set_visible(False)
    values = []
    for r, *_ in rows:
        if r.status == "estimated" and np.isfinite(r.standardized):
            s = float(r.expected_sign)
            values += [s * r.standardized, s * r.standardized_ci_low, s * r.standardized_ci_high]
    lo = min([*values, 0.0])
    hi = max([*values, 0.0])
    span = (hi - lo) or 1.0
    chart.set_xlim(lo - 0.06 * span, hi + 0.06 * span)
    chart.axvline(0, color="#9e9e9e", linewidth=0.9, zorder=1)
    y = 0.0
    for k, (r, text, reason, h) in enumerate(rows):
        mid = y + h / 2
        if k % 2 == 0:
            bg.axhspan(
                height - _MARGIN - y - h, height - _MARGIN - y, color="#f4f6f8", zorder=0, lw=0
            )
        key = _link_key(r)
        colour, style, _ = LINK_STYLES[key]
        bg.text(
            _MARGIN,
            height - _MARGIN - mid,
            str(int(r.number)),
            ha="left",
            va="center",
            fontsize=fontsize,
            fontweight="bold",
            color=colour,
        )
        bg.text(
            _MARGIN + num_w,
            height - _MARGIN - mid,
            text,
            ha="left",
            va="center",
            fontsize=fontsize,
            gid=f"row:{int(r.number)}",
        )
        if reason:
            chart.text(
                0.05 / chart_w,
                mid,
                reason,
                transform=chart.get_yaxis_transform(),
                ha="left",
                va="center",
                fontsize=fontsize,
                fontstyle="italic",
                color="#555555",
                gid=f"reason:{int(r.number)}",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0},
            )
        elif np.isfinite(r.standardized):
            s = float(r.expected_sign)
            a, b = sorted((s * r.standardized_ci_low, s * r.standardized_ci_high))
            chart.plot([a, b], [mid, mid], color=colour, linestyle=style, linewidth=2.0)
            chart.plot(
                [s * r.standardized],
                [mid],
                marker="o",
                markersize=6,
                color=colour,
                markerfacecolor=colour if key in HOLDS else "white",
                markeredgewidth=1.5,
            )
        y += h
    chart.tick_params(axis="x", labelsize=fontsize)
    chart.set_xlabel(
        "Standardised effect with 95% CI (SD per SD; > 0: progress carried through)",
        fontsize=fontsize,
    )
    chart.xaxis.label.set_wrap(False)
    label_text, _, _ = measure.fit(chart.get_xlabel(), chart_w + 0.15, fontsize)
    chart.set_xlabel(label_text, fontsize=fontsize)
    return fig


def chain_links_alt_text(result: ChainResult, *, structural: bool = False) -> str:
    """Alternative text for :func:`plot_chain_links`: each numbered link's standardised
    effect (positive = progress carried through) and interval, or why it was not tested."""
    links = chain_link_numbers(result, structural=structural)
    parts = [
        f"Chart of the estimated strength of the {len(links)} links drawn in the results-chain "
        "diagram: standardised effect (standard deviations of the downstream indicator per "
        "standard deviation of the upstream, positive when progress carried through) with its "
        "95% confidence interval."
    ]
    for r in _rows(links) if len(links) else []:
        head = f"Link {int(r.number)}, {r.upstream_label} to {r.downstream_label}"
        cat = _category(r.where)
        if cat:
            head += f" (issues about {_CATEGORY_WORDS.get(cat, cat)})"
        if r.status == "estimated" and np.isfinite(r.standardized):
            s = float(r.expected_sign)
            a, b = sorted((s * r.standardized_ci_low, s * r.standardized_ci_high))
            parts.append(
                f"{head}: {s * r.standardized:+.2f} (95% CI {a:+.2f} to {b:+.2f}), "
                f"{STRENGTHS[r.strength]}."
            )
        else:
            parts.append(f"{head}: not tested ({r.reason}).")
    return " ".join(parts)


def chain_alt_text(
    result: ChainResult, status: Mapping[str, str] | None = None, *, structural: bool = False
) -> str:
    """Alternative text for :func:`plot_chain`: the boxes by level, then every link in words.

    Parameters
    ----------
    result
        A :class:`ChainResult`.
    status
        The same status mapping given to the diagram.
    structural
        As in :func:`plot_chain` (links that no facility × round data can test).

    Returns
    -------
    str
    """
    from clm_research.framework import LEVELS

    status = dict(status or {})
    links = chain_link_numbers(result, structural=structural)
    used = set(links["upstream"]) | set(links["downstream"]) if len(links) else set()
    ind = (
        result.indicators[result.indicators["id"].isin(used)]
        if len(result.indicators)
        else result.indicators
    )
    missing = (
        {str(i) for i, r in zip(ind["id"], ind["not_collected"], strict=True) if r}
        if len(ind) and "not_collected" in ind
        else set()
    )
    parts = [
        f"Diagram of the results chain: {len(ind)} indicators in columns from inputs to impact "
        f"and {len(links)} numbered links between them, each drawn with its estimated strength."
    ]
    for level in LEVELS:
        members = ind[ind["level"] == level] if len(ind) else ind
        if len(members):
            items = ", ".join(
                str(r.label)
                + (
                    " (not collected)"
                    if r.id in missing
                    else f" (status: {status[r.id]})"
                    if r.id in status
                    else ""
                )
                for r in _rows(members)
            )
            parts.append(f"{level.capitalize()}: {items}.")
    for r in _rows(links) if len(links) else []:
        head = f"Link {int(r.number)}, {r.upstream_label} to {r.downstream_label}"
        cat = _category(r.where)
        if cat:
            head += f" (issues about {_CATEGORY_WORDS.get(cat, cat)})"
        elif isinstance(r.where, str):
            head += f" (where {r.where})"
        if r.status == "estimated":
            parts.append(
                f"{head}: {STRENGTHS[r.strength]}, {_fmt(r.estimate)} per unit "
                f"(95% CI {_fmt(r.ci_low)} to {_fmt(r.ci_high)})"
                + ("; the chain breaks here." if r.strength not in HOLDS else ".")
            )
        else:
            parts.append(f"{head}: not tested ({r.reason}).")
    hidden = len(result.links) - len(links)
    if hidden:
        parts.append(
            f"Not drawn: {hidden} declared links between indicators measured per organisation "
            "or outreach site, which facility and round data cannot test."
        )
    return " ".join(parts)
