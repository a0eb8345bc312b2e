"""Multiple indicators: Benjamini–Hochberg false-discovery-rate adjustment across a report's tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    EvaluationError,
    EvaluationResult,
    require_columns,
    results_frame,
)

__all__ = ["benjamini_hochberg", "adjust_pvalues"]


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values); ``nan`` stays ``nan`` and is not counted.

    q_(i) = min_{j >= i} ( m · p_(j) / j ), capped at 1, for the m non-missing p-values sorted
    ascending (statsmodels ``multipletests(method="fdr_bh")``).
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise EvaluationError("benjamini_hochberg: p-values must lie in [0, 1]")
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def adjust_pvalues(
    tests: pd.DataFrame | Iterable[EvaluationResult] | Mapping[str, EvaluationResult],
    *,
    p_column: str = "p_value",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Add BH q-values and a plain statement to a table of tests (or to several results' summaries).

    Parameters
    ----------
    tests
        A table with a ``p_value`` column (one row per test, e.g. one per indicator), or
        evaluation results whose ``summary()`` rows are stacked first.
    alpha
        False-discovery rate.

    Returns
    -------
    DataFrame
        The rows with ``q_value``, ``significant_bh`` and ``conclusion`` ("effect detected at
        FDR 5%" / "no effect detected after adjusting for m tests" / "no test"). Rows without a
        p-value are kept, not counted among the m tests, and say so.
    """
    df = tests.copy() if isinstance(tests, pd.DataFrame) else results_frame(tests)
    require_columns(df, [p_column], "adjust_pvalues")
    p = pd.to_numeric(df[p_column], errors="coerce").to_numpy(float)
    q = benjamini_hochberg(p)
    m = int(np.isfinite(p).sum())
    df["q_value"] = q
    df["significant_bh"] = np.where(np.isfinite(q), q <= alpha, False)
    df["conclusion"] = np.where(
        ~np.isfinite(q),
        "no test (no p-value)",
        np.where(
            q <= alpha,
            f"effect detected (FDR {alpha:.0%}, {m} tests)",
            f"no effect detected after adjusting for {m} tests",
        ),
    )
    return df
