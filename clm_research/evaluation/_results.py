"""Shared result objects: every evaluation method reports effects, CIs, p-values and diagnostics the same way."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from clm_research.errors import CLMError

if TYPE_CHECKING:  # matplotlib is imported lazily, inside plot methods
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EvaluationError",
    "Effect",
    "EvaluationResult",
    "EffectScale",
]

#: How an effect is expressed; decides the null value (1 for ratios, 0 otherwise).
EffectScale = Literal[
    "difference",
    "rate_ratio",
    "odds_ratio",
    "hazard_ratio",
    "risk_ratio",
    "ratio",
    "proportion",
    "days",
    "value",
]
_RATIO_SCALES = {"rate_ratio", "odds_ratio", "hazard_ratio", "risk_ratio", "ratio"}
_P = ParamSpec("_P")
_T = TypeVar("_T")


class EvaluationError(CLMError):
    """An evaluation method cannot be applied to the data given (the message says why)."""


@dataclass(frozen=True)
class Effect:
    """One estimated effect with its confidence interval.

    Parameters
    ----------
    name
        Machine name, e.g. ``level_change``.
    label
        Plain-language label used in reports.
    estimate, ci_low, ci_high
        Point estimate and confidence limits on the reporting scale (ratios exponentiated).
    p_value
        Two-sided p-value against the null (``nan`` when not defined, e.g. a median).
    scale
        The reporting scale (:data:`EffectScale`).
    se
        Standard error on the estimation scale (log scale for ratios), when known.
    level
        Confidence level of the interval.
    """

    name: str
    label: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float = math.nan
    scale: EffectScale = "difference"
    se: float = math.nan
    level: float = 0.95

    @property
    def null_value(self) -> float | None:
        """The value meaning "no effect" (1 for ratios, 0 for differences, none for levels)."""
        if self.scale in _RATIO_SCALES:
            return 1.0
        if self.scale == "difference":
            return 0.0
        return None

    @property
    def is_null(self) -> bool | None:
        """True when the confidence interval includes the null value (no detectable effect)."""
        null = self.null_value
        if null is None or not np.isfinite(self.ci_low) or not np.isfinite(self.ci_high):
            return None
        return bool(self.ci_low <= null <= self.ci_high)

    def statement(self, digits: int = 3) -> str:
        """One plain sentence: the estimate, its CI and, when the CI includes the null, say so."""
        pct = f"{self.level:.0%}"
        text = (
            f"{self.label}: {self.estimate:.{digits}g} "
            f"({pct} CI {self.ci_low:.{digits}g} to {self.ci_high:.{digits}g})"
        )
        if np.isfinite(self.p_value):
            text += f", p = {self.p_value:.2g}"
        if self.is_null is True:
            text += "; no effect detected (the interval includes no change)"
        elif self.is_null is False:
            text += "; the interval excludes no change"
        return text + "."

    def as_row(self) -> dict[str, Any]:
        """The effect as one tidy row."""
        return {
            "effect": self.name,
            "label": self.label,
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "scale": self.scale,
            "se": self.se,
            "null_in_ci": self.is_null,
            "statement": self.statement(),
        }

    @classmethod
    def from_coefficient(
        cls,
        name: str,
        label: str,
        coef: float,
        se: float,
        *,
        scale: EffectScale = "difference",
        level: float = 0.95,
        df: float | None = None,
    ) -> Effect:
        """Build an effect from a coefficient and its SE (Wald CI; exponentiated for ratios).

        ``df`` switches the reference distribution from the normal to Student's t.
        """
        from scipy import stats

        if not np.isfinite(se) or se <= 0:
            crit, p = math.nan, math.nan
        elif df is not None:
            crit = float(stats.t.ppf(0.5 + level / 2, df))
            p = float(2 * stats.t.sf(abs(coef / se), df))
        else:
            crit = float(stats.norm.ppf(0.5 + level / 2))
            p = float(2 * stats.norm.sf(abs(coef / se)))
        lo, hi = coef - crit * se, coef + crit * se
        if scale in _RATIO_SCALES:
            coef, lo, hi = math.exp(coef), math.exp(lo), math.exp(hi)
        return cls(name, label, float(coef), float(lo), float(hi), p, scale, float(se), level)


@dataclass
class EvaluationResult:
    """Base of every method's result: effects, diagnostics, ``.summary()`` and ``.plot()``.

    The first effect is the primary one (``.estimate``, ``.ci``, ``.p_value`` refer to it).
    """

    method: str
    effects: tuple[Effect, ...]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    n_obs: int = 0
    notes: tuple[str, ...] = ()

    # -- primary effect ---------------------------------------------------------------
    @property
    def primary(self) -> Effect:
        if not self.effects:
            raise EvaluationError(f"{self.method}: no effect was estimated")
        return self.effects[0]

    @property
    def estimate(self) -> float:
        return self.primary.estimate

    @property
    def ci(self) -> tuple[float, float]:
        return (self.primary.ci_low, self.primary.ci_high)

    @property
    def p_value(self) -> float:
        return self.primary.p_value

    def effect(self, name: str) -> Effect:
        """Return the effect called ``name`` (error listing the known names)."""
        for e in self.effects:
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.effects)
        raise KeyError(f"{self.method}: no effect {name!r}; effects: {known}")

    # -- reporting --------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """One row per effect: estimate, CI, p-value, scale, plain statement, n."""
        rows = [{"method": self.method, **e.as_row(), "n_obs": self.n_obs} for e in self.effects]
        return pd.DataFrame(rows)

    def diagnostics_table(self) -> pd.DataFrame:
        """Model diagnostics as a two-column table (name, value)."""
        return pd.DataFrame(
            {
                "diagnostic": list(self.diagnostics),
                "value": [str(v) for v in self.diagnostics.values()],
            }
        )

    def statements(self) -> list[str]:
        """Plain sentences for every effect, followed by the method's notes."""
        return [e.statement() for e in self.effects] + list(self.notes)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Default plot: the effects with their confidence intervals (a small forest plot)."""
        return forest(
            labels=[e.label for e in self.effects],
            estimates=[e.estimate for e in self.effects],
            lows=[e.ci_low for e in self.effects],
            highs=[e.ci_high for e in self.effects],
            null=self.primary.null_value if self.effects else None,
            log=self.primary.scale in _RATIO_SCALES if self.effects else False,
            title=self.method,
            ax=ax,
        )

    def __repr__(self) -> str:  # compact, readable in notebooks
        lines = [f"<{type(self).__name__} {self.method}, n={self.n_obs}>"]
        lines += [f"  {s}" for s in self.statements()]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers
def new_axes(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes' figure, or a new figure (no pyplot state)."""
    from matplotlib.figure import Figure

    if ax is not None:
        # matplotlib types ax.figure as Figure | SubFigure; the axes are drawn on a figure
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def forest(
    labels: Sequence[str],
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    null: float | None = None,
    log: bool = False,
    title: str = "",
    weights: Sequence[float] | None = None,
    pooled: tuple[str, float, float, float] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw a forest plot (one row per estimate; optional pooled diamond)."""
    n = len(labels)
    fig, ax = new_axes(ax, figsize=(7, 1.2 + 0.4 * (n + (2 if pooled else 0))))
    y = np.arange(n)[::-1] + (2 if pooled else 0)
    est = np.asarray(estimates, float)
    lo, hi = np.asarray(lows, float), np.asarray(highs, float)
    sizes = (
        30
        if weights is None
        else 20 + 200 * np.asarray(weights, float) / max(np.max(weights), 1e-12)
    )
    ax.hlines(y, lo, hi, color="0.3")
    ax.scatter(est, y, s=sizes, marker="s", color="0.2", zorder=3)
    ticks, ticklabels = list(y), list(labels)
    if pooled is not None:
        name, p_est, p_lo, p_hi = pooled
        ax.fill([p_lo, p_est, p_hi, p_est], [0.5, 0.8, 0.5, 0.2], color="tab:blue")
        ticks.append(0.5)
        ticklabels.append(name)
    if null is not None:
        ax.axvline(null, color="0.5", linestyle="--", linewidth=1)
    if log:
        ax.set_xscale("log")
    ax.set_yticks(ticks, ticklabels)
    ax.set_title(title)
    return fig


def require_columns(df: pd.DataFrame, columns: Iterable[str | None], what: str) -> None:
    """Raise :class:`EvaluationError` naming the missing columns of ``df``."""
    if not isinstance(df, pd.DataFrame):
        raise EvaluationError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise EvaluationError(
            f"{what}: missing column(s) {missing}; available columns: {', '.join(map(str, df.columns))}"
        )


def numeric_column(df: pd.DataFrame, column: str, what: str) -> pd.Series:
    """Return ``df[column]`` as float, or raise naming the first row that is not a number."""
    s = df[column]
    if isinstance(s.dtype, pd.BooleanDtype) or s.dtype == bool:
        return s.astype("Float64").astype(float)
    out = pd.to_numeric(s, errors="coerce").astype(float)
    bad = out.isna() & s.notna()
    if bad.any():
        row = bad.idxmax()
        raise EvaluationError(
            f"{what}: column {column!r} row {row!r} is not a number: {s[bad].iloc[0]!r}"
        )
    return out


def fit_guard(what: str, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call a statsmodels fitting function; turn its exceptions into a clear EvaluationError."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return func(*args, **kwargs)
    except EvaluationError:
        raise
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
        raise EvaluationError(
            f"{what}: the model could not be fitted ({type(exc).__name__}: {exc}). "
            "Check for constant or collinear columns, too few observations or no variation in the outcome."
        ) from exc


def results_frame(
    results: Iterable[EvaluationResult] | Mapping[str, EvaluationResult],
) -> pd.DataFrame:
    """Stack the ``summary()`` of several results into one table (keys become a ``test`` column)."""
    if isinstance(results, Mapping):
        parts: list[pd.DataFrame] = [r.summary().assign(test=k) for k, r in results.items()]
    else:
        parts = [r.summary() for r in results]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)
