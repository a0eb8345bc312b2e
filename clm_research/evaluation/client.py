"""Client-level models for exit interviews: GEE and linear mixed models, clustered by facility.

Exit interviews are clustered in facilities (ICCs of 0.01–0.25), so every model here either
uses cluster-robust errors (GEE, exchangeable working correlation) or a facility random
intercept (mixed model). With few facilities the robust sandwich is too small; the default
small-cluster correction is the bias-reduced sandwich of Mancl & DeRouen (2001)
(statsmodels ``cov_type="bias_reduced"``) with Student-t intervals on K − 2 degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EffectScale,
    EvaluationError,
    EvaluationResult,
    fit_guard,
    new_axes,
    numeric_column,
    require_columns,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from clm_research.framework import Framework

__all__ = ["ClientResult", "add_clm_exposure", "client_gee", "client_mixed", "indicator_gee"]


@dataclass(repr=False)
class ClientResult(EvaluationResult):
    """Result of :func:`client_gee` or :func:`client_mixed`; ``means`` = outcome mean by round × group."""

    model: Any = None
    means: pd.DataFrame = field(default_factory=pd.DataFrame)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Mean outcome by round for facilities with and without CLM (or by exposure)."""
        if self.means.empty:
            return super().plot(ax)
        fig, ax = new_axes(ax, figsize=(7, 4))
        for g, part in self.means.groupby("group"):
            ax.plot(part["time"].astype(str), part["mean"], marker="o", label=str(g))
        ax.set_title(self.method)
        ax.set_ylabel("mean outcome")
        ax.legend(frameon=False, fontsize="small")
        return fig


def add_clm_exposure(
    interviews: pd.DataFrame,
    facilities: pd.DataFrame,
    *,
    unit: str = "facility_id",
    date: str = "date",
    start: str = "clm_start",
) -> pd.DataFrame:
    """Add ``clm_facility`` (1 = facility ever under CLM) and ``clm_active`` (1 = interview on/after CLM start).

    Raises
    ------
    EvaluationError
        Interviews referring to facilities missing from ``facilities``.
    """
    what = "add_clm_exposure"
    require_columns(interviews, [unit, date], what)
    require_columns(facilities, [unit, start], what)
    unknown = sorted(set(interviews[unit]) - set(facilities[unit]))
    if unknown:
        raise EvaluationError(f"{what}: interviews refer to unknown facilities {unknown[:5]}")
    starts = pd.to_datetime(facilities.set_index(unit)[start], errors="coerce")
    s = interviews[unit].map(starts)
    out = interviews.copy()
    out["clm_facility"] = s.notna().astype(int).to_numpy()
    out["clm_active"] = (s.notna() & (pd.to_datetime(out[date]) >= s)).astype(int).to_numpy()
    return out


def _formula_terms(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    terms = []
    for c in columns:
        s = df[c]
        if (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)) or isinstance(
            s.dtype, pd.BooleanDtype
        ):
            terms.append(f'Q("{c}")')
        else:
            terms.append(f'C(Q("{c}"))')
    return terms


def _prepare(
    interviews: pd.DataFrame,
    outcome: str,
    exposure: str,
    covariates: Sequence[str],
    cluster: str,
    what: str,
) -> tuple[pd.DataFrame, list[str], int]:
    require_columns(interviews, [outcome, exposure, cluster, *covariates], what)
    df = interviews[[outcome, exposure, cluster, *covariates]].copy()
    df[outcome] = numeric_column(df, outcome, what)
    df[exposure] = numeric_column(df, exposure, what)
    for c in covariates:
        if isinstance(df[c].dtype, pd.BooleanDtype):
            df[c] = df[c].astype("Float64").astype(float)
    n_missing = int(df[[outcome, exposure, *covariates]].isna().any(axis=1).sum())
    df = df.dropna(subset=[outcome, exposure, *covariates])  # counted and reported in diagnostics
    if df.empty:
        raise EvaluationError(f"{what}: no interview has {outcome!r} and {exposure!r} recorded")
    k = df[cluster].nunique()
    if k < 2:
        raise EvaluationError(
            f"{what}: a single facility (cluster); clustered models need several facilities"
        )
    if df[exposure].nunique() < 2:
        raise EvaluationError(
            f"{what}: exposure {exposure!r} takes one value only; no comparison group"
        )
    if df[outcome].nunique() < 2:
        raise EvaluationError(f"{what}: outcome {outcome!r} takes one value only; nothing to model")
    terms = _formula_terms(df, [exposure, *covariates])
    return df, terms, n_missing


def _means(
    df: pd.DataFrame, outcome: str, exposure: str, covariates: Sequence[str]
) -> pd.DataFrame:
    time = next((c for c in ("round", "period") if c in covariates), None)
    group = "clm_facility" if "clm_facility" in covariates else exposure
    if time is None:
        return pd.DataFrame()
    m = df.groupby([time, group])[outcome].mean().rename("mean").reset_index()
    return m.rename(columns={time: "time", group: "group"})


def client_gee(
    interviews: pd.DataFrame,
    outcome: str,
    *,
    exposure: str = "clm_active",
    covariates: Sequence[str] = ("round", "clm_facility"),
    cluster: str = "facility_id",
    family: Literal["auto", "binomial", "gaussian"] = "auto",
    small_sample: Literal["bias_reduced", "none"] = "bias_reduced",
    level: float = 0.95,
) -> ClientResult:
    """GEE with an exchangeable working correlation within facility and robust errors.

    Parameters
    ----------
    interviews
        One row per interview (canonical ``interviews``; see :func:`add_clm_exposure`).
    outcome
        Outcome column: boolean/0-1 (binomial, effect = odds ratio) or numeric (gaussian, difference).
    exposure
        0/1 column whose coefficient is the effect (default ``clm_active``).
    covariates
        Adjustment columns; text columns enter as categories. The default (round effects and
        ever-CLM facility) makes the exposure coefficient a difference-in-differences.
    cluster
        Cluster column (facility).
    family
        ``auto`` picks binomial for 0/1 outcomes, gaussian otherwise.
    small_sample
        ``bias_reduced`` (Mancl–DeRouen, t on K − 2 df) or ``none`` (plain sandwich, normal).

    Returns
    -------
    ClientResult
        Effect ``exposure_effect``; diagnostics hold the number of facilities, cluster sizes,
        the working within-facility correlation and the interviews left out for a missing value.
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    what = "client_gee"
    df, terms, n_missing = _prepare(interviews, outcome, exposure, list(covariates), cluster, what)
    binary = set(np.unique(df[outcome])) <= {0.0, 1.0}
    if family == "auto":
        family = "binomial" if binary else "gaussian"
    if family == "binomial" and not binary:
        raise EvaluationError(
            f"{what}: family 'binomial' needs a 0/1 outcome; {outcome!r} has other values"
        )
    fam = sm.families.Binomial() if family == "binomial" else sm.families.Gaussian()
    formula = f'Q("{outcome}") ~ ' + " + ".join(terms)
    df = df.sort_values(cluster, kind="stable")
    model = smf.gee(
        formula, groups=cluster, data=df, family=fam, cov_struct=sm.cov_struct.Exchangeable()
    )
    cov_type = "bias_reduced" if small_sample == "bias_reduced" else "robust"
    res = fit_guard(what, model.fit, cov_type=cov_type, maxiter=100)
    k = int(df[cluster].nunique())
    name = terms[0]
    scale: EffectScale = "odds_ratio" if family == "binomial" else "difference"
    df_t = max(k - 2, 1) if small_sample == "bias_reduced" else None
    eff = Effect.from_coefficient(
        "exposure_effect",
        f"Effect of {exposure} on {outcome} (GEE, {'odds ratio' if binary else 'difference'})",
        float(res.params[name]),
        float(res.bse[name]),
        scale=scale,
        level=level,
        df=df_t,
    )
    sizes = df.groupby(cluster).size()
    diag = {
        "n_facilities": k,
        "cluster_size_min": int(sizes.min()),
        "cluster_size_median": float(sizes.median()),
        "cluster_size_max": int(sizes.max()),
        "working_correlation": float(np.atleast_1d(model.cov_struct.dep_params)[0]),
        "family": family,
        "small_sample_correction": small_sample,
        "n_excluded_missing": n_missing,
        "formula": formula,
    }
    notes = []
    if n_missing:
        notes.append(
            f"{n_missing} interviews without a value for the outcome, exposure or covariates were "
            "not used (e.g. questions asked of ART clients only)."
        )
    if k < 30 and small_sample == "none":
        notes.append(
            f"Only {k} facilities: the plain sandwich is too small; use small_sample='bias_reduced'."
        )
    return ClientResult(
        method=f"GEE ({family}, exchangeable, clustered by {cluster})",
        effects=(eff,),
        diagnostics=diag,
        n_obs=len(df),
        notes=tuple(notes),
        model=res,
        means=_means(df, outcome, exposure, list(covariates)),
    )


def client_mixed(
    interviews: pd.DataFrame,
    outcome: str,
    *,
    exposure: str = "clm_active",
    covariates: Sequence[str] = ("round", "clm_facility"),
    cluster: str = "facility_id",
    level: float = 0.95,
) -> ClientResult:
    """Linear mixed model with a facility random intercept (REML), for continuous outcomes.

    Returns
    -------
    ClientResult
        Effect ``exposure_effect`` (difference); diagnostics include the between-facility
        variance, residual variance and the intraclass correlation (ICC).
    """
    import statsmodels.formula.api as smf

    what = "client_mixed"
    df, terms, n_missing = _prepare(interviews, outcome, exposure, list(covariates), cluster, what)
    formula = f'Q("{outcome}") ~ ' + " + ".join(terms)
    model = smf.mixedlm(formula, data=df, groups=df[cluster])
    res = fit_guard(what, model.fit, reml=True)
    name = terms[0]
    k = int(df[cluster].nunique())
    eff = Effect.from_coefficient(
        "exposure_effect",
        f"Effect of {exposure} on {outcome} (mixed model)",
        float(res.params[name]),
        float(res.bse[name]),
        level=level,
        df=max(k - 2, 1),
    )
    var_u = float(np.asarray(res.cov_re)[0, 0])
    var_e = float(res.scale)
    diag = {
        "n_facilities": k,
        "var_facility": var_u,
        "var_residual": var_e,
        "icc": var_u / (var_u + var_e) if var_u + var_e > 0 else math.nan,
        "converged": bool(res.converged),
        "n_excluded_missing": n_missing,
        "formula": formula,
    }
    notes = [] if res.converged else ["The mixed model did not converge; interpret with care."]
    if n_missing:
        notes.append(
            f"{n_missing} interviews without a value for the outcome, exposure or covariates were not used."
        )
    return ClientResult(
        method=f"Linear mixed model (random intercept by {cluster})",
        effects=(eff,),
        diagnostics=diag,
        n_obs=len(df),
        notes=tuple(notes),
        model=res,
        means=_means(df, outcome, exposure, list(covariates)),
    )


def indicator_gee(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    indicator_id: str,
    *,
    first_round: str | None = None,
    last_round: str | None = None,
    level: float = 0.95,
) -> ClientResult:
    """:func:`client_gee` of one framework indicator measured in the exit interviews.

    The outcome is the indicator's row-level value (0/1 for a proportion: the effect is an odds
    ratio; the value for a mean or median: a difference), among the interviews in its
    denominator, between ``first_round`` and ``last_round``. Exposure is ``clm_active``
    (interview on or after the facility's CLM start); round and CLM-facility terms make it a
    difference-in-differences.

    Raises
    ------
    EvaluationError
        The indicator is not a client-level proportion, mean or median of the interviews, or
        no interview is in scope.
    """
    from clm_research.derived import enrich
    from clm_research.evaluation.panels import row_outcome

    ind = framework.indicator(indicator_id)
    what = f"indicator_gee({indicator_id})"
    if ind.dataset != "interviews" or "interviews" not in tables or "facilities" not in tables:
        raise EvaluationError(
            f"{what}: not supported for this data: GEE needs client interviews and facilities"
        )
    fac = tables["facilities"]
    iv = add_clm_exposure(tables["interviews"], fac)
    exposure = iv[["clm_facility", "clm_active"]].to_numpy()
    iv = enrich("interviews", iv.drop(columns=["clm_active"]), fac)
    iv["clm_facility"], iv["clm_active"] = exposure[:, 0], exposure[:, 1]
    got = row_outcome(ind, iv)
    if got is None:
        raise EvaluationError(f"{what}: not supported for this data: no client-level outcome")
    scope, value = got
    keep = scope.to_numpy(dtype=bool)
    rounds = iv["round"].astype(str)
    if first_round:
        keep &= (rounds >= first_round).to_numpy()
    if last_round:
        keep &= (rounds <= last_round).to_numpy()
    if not keep.any():
        raise EvaluationError(f"{what}: no interview in scope")
    data = iv[keep].assign(outcome=value[keep].to_numpy())
    return client_gee(data, "outcome", level=level)
