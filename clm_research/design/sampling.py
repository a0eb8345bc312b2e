"""Choosing facilities: systematic PPS, stratified samples, reserve lists, roll-out order.

* **PPS** (probability proportional to size): bigger facilities (more clients, e.g. ``tx_curr``)
  are more likely to be chosen, so that every *client* has about the same chance of being
  interviewed when each facility gives the same number of interviews. Systematic PPS: list the
  facilities, add up their sizes, step through the running total with a fixed interval from a
  random start (WHO/UNICEF cluster-survey practice). A facility bigger than the interval is a
  "certainty" unit: taken for sure and set aside before the rest are drawn.
* **Stratified**: the sample is drawn separately in each region (or district, facility type),
  so every stratum is represented.
* **Reserves**: a ranked list of replacements per stratum, drawn at the same time, so a
  facility that cannot be visited (closed, insecure, refuses) is replaced by a rule fixed in
  advance, and every replacement is logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from clm_research.errors import DesignInputError

__all__ = [
    "pps_systematic",
    "allocate_sample",
    "FacilitySample",
    "stratified_sample",
    "allocate_rollout",
]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_frame(frame: pd.DataFrame, id_column: str, size: str | None) -> None:
    if id_column not in frame.columns:
        raise DesignInputError(f"the facility list has no column {id_column!r}")
    if frame[id_column].duplicated().any():
        dup = frame.loc[frame[id_column].duplicated(), id_column].iloc[0]
        raise DesignInputError(f"facility {dup!r} appears more than once in the facility list")
    if size is not None:
        if size not in frame.columns:
            raise DesignInputError(f"the facility list has no size column {size!r}")
        s = pd.to_numeric(frame[size], errors="coerce")
        bad = frame.loc[s.isna() | (s <= 0), id_column]
        if len(bad):
            raise DesignInputError(
                f"size column {size!r} must be a positive number for every facility; "
                f"not for {', '.join(map(str, bad.head(5)))}"
            )


def pps_systematic(
    frame: pd.DataFrame,
    n: int,
    *,
    size: str,
    seed: int | np.random.Generator,
    id_column: str = "facility_id",
    sort_by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Systematic sample of ``n`` facilities with probability proportional to size.

    Parameters
    ----------
    frame
        The sampling frame: one row per facility.
    n
        Number of facilities to select.
    size
        Column with the measure of size (e.g. clients on treatment, ``tx_curr``).
    seed
        Random seed (or a numpy Generator).
    id_column
        Facility identifier column.
    sort_by
        Columns to order the list by before stepping through it (implicit stratification,
        e.g. ``["region", "district"]``); the frame's own order when ``None``.

    Returns
    -------
    pandas.DataFrame
        The selected rows with ``inclusion_probability`` (``n · size / total``, 1 for
        certainty units), ``design_weight`` (its inverse) and ``certainty``.

    Examples
    --------
    >>> frame = pd.DataFrame({"facility_id": list("ABCDE"), "tx_curr": [100, 200, 300, 400, 1000]})
    >>> s = pps_systematic(frame, 2, size="tx_curr", seed=3)
    >>> s.loc[s["certainty"], "facility_id"].tolist()  # E (1000 > interval 2000 / 2) is certain
    ['E']
    >>> len(s)
    2
    """
    _check_frame(frame, id_column, size)
    if not 1 <= n <= len(frame):
        raise DesignInputError(f"cannot select {n} facilities from a list of {len(frame)}")
    rng = _rng(seed)
    work = frame.sort_values(list(sort_by), kind="stable") if sort_by else frame
    sizes = pd.to_numeric(work[size]).astype(float)
    certain = pd.Series(False, index=work.index)
    # Take certainty units out until no remaining unit is larger than the interval.
    while True:
        remaining = ~certain
        k = n - int(certain.sum())
        if k == 0:
            break
        interval = sizes[remaining].sum() / k
        big = remaining & (sizes >= interval)
        if not big.any():
            break
        certain |= big
    rest = work.index[~certain]
    k = n - int(certain.sum())
    chosen = list(work.index[certain])
    prob = pd.Series(1.0, index=work.index)
    if k > 0:
        rest_sizes = sizes.loc[rest].to_numpy()
        total = rest_sizes.sum()
        interval = total / k
        start = rng.uniform(0, interval)
        points = start + interval * np.arange(k)
        cum = np.cumsum(rest_sizes)
        idx = np.searchsorted(cum, points, side="right")
        chosen.extend(rest[idx])
        prob.loc[rest] = k * rest_sizes / total
    out = work.loc[chosen].copy()
    out["inclusion_probability"] = prob.loc[chosen].to_numpy()
    out["design_weight"] = 1 / out["inclusion_probability"]
    out["certainty"] = certain.loc[chosen].to_numpy()
    return out.reset_index(drop=True)


def allocate_sample(
    stratum_sizes: Mapping[str, int],
    n: int,
    allocation: Literal["proportional", "equal"] = "proportional",
) -> dict[str, int]:
    """Share ``n`` facilities among strata (largest-remainder rounding, at least 1 each).

    Examples
    --------
    >>> allocate_sample({"North": 30, "South": 20, "East": 10}, 12)
    {'North': 6, 'South': 4, 'East': 2}
    >>> allocate_sample({"North": 30, "South": 20, "East": 10}, 12, "equal")
    {'North': 4, 'South': 4, 'East': 4}
    """
    strata = list(stratum_sizes)
    total = sum(stratum_sizes.values())
    if n > total:
        raise DesignInputError(f"cannot select {n} facilities from {total}")
    if n < len(strata):
        raise DesignInputError(
            f"{n} facilities cannot cover {len(strata)} strata (at least 1 each)"
        )
    if allocation == "proportional":
        raw = np.array([n * stratum_sizes[s] / total for s in strata])
    elif allocation == "equal":
        raw = np.full(len(strata), n / len(strata))
    else:
        raise DesignInputError(f"allocation must be 'proportional' or 'equal', got {allocation!r}")
    caps = np.array([stratum_sizes[s] for s in strata])
    take = np.minimum(np.maximum(np.floor(raw).astype(int), 1), caps)
    # Hand out what is left by largest remainder, never above a stratum's size.
    while take.sum() < n:
        room = take < caps
        rem = np.where(room, raw - take, -np.inf)
        take[int(np.argmax(rem))] += 1
    while take.sum() > n:
        rem = np.where(take > 1, raw - take, np.inf)
        take[int(np.argmin(rem))] -= 1
    return {s: int(t) for s, t in zip(strata, take, strict=True)}


@dataclass(frozen=True)
class FacilitySample:
    """A facility sample with its reserve list and a log of replacements.

    Attributes
    ----------
    selected
        The facilities to visit (with ``stratum``, ``inclusion_probability``, ``design_weight``).
    reserves
        Ranked replacements per stratum (``stratum``, ``reserve_rank``), drawn with the sample.
    replacements
        One row per replacement made: ``replaced``, ``replacement``, ``stratum``, ``reason``.
    seed
        Random seed of the draw.
    """

    selected: pd.DataFrame
    reserves: pd.DataFrame
    replacements: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["replaced", "replacement", "stratum", "reason"]
        )
    )
    seed: int | None = None
    id_column: str = "facility_id"

    def replace(self, facility_id: str, reason: str) -> FacilitySample:
        """Replace a selected facility by the next reserve of the same stratum.

        Returns a new :class:`FacilitySample`; the replacement is logged with its reason.

        Raises
        ------
        ValueError
            When the facility is not in the sample, no reason is given, or the stratum has no
            reserve left.
        """
        ids = self.selected[self.id_column]
        if facility_id not in set(ids):
            raise DesignInputError(f"facility {facility_id!r} is not in the sample")
        if not reason or not reason.strip():
            raise DesignInputError("give the reason for the replacement (it is reported)")
        stratum = self.selected.loc[ids == facility_id, "stratum"].iloc[0]
        pool = self.reserves[self.reserves["stratum"] == stratum].sort_values("reserve_rank")
        if pool.empty:
            raise DesignInputError(f"no reserve facility left in stratum {stratum!r}")
        nxt = pool.iloc[[0]]
        new_id = nxt[self.id_column].iloc[0]
        row = nxt.drop(columns=["reserve_rank"]).assign(replaces=facility_id)
        selected = pd.concat([self.selected[ids != facility_id], row], ignore_index=True)
        reserves = self.reserves[self.reserves[self.id_column] != new_id].reset_index(drop=True)
        log = pd.concat(
            [
                self.replacements,
                pd.DataFrame(
                    [
                        {
                            "replaced": facility_id,
                            "replacement": new_id,
                            "stratum": stratum,
                            "reason": reason.strip(),
                        }
                    ]
                ),
            ],
            ignore_index=True,
        )
        return replace(self, selected=selected, reserves=reserves, replacements=log)


def stratified_sample(
    frame: pd.DataFrame,
    n: int | Mapping[str, int],
    *,
    seed: int,
    strata: str | None = None,
    method: Literal["pps", "srs"] = "pps",
    size: str | None = None,
    allocation: Literal["proportional", "equal"] = "proportional",
    reserves_per_stratum: int = 2,
    id_column: str = "facility_id",
) -> FacilitySample:
    """Draw a (stratified) facility sample with a reserve list.

    Parameters
    ----------
    frame
        Sampling frame, one row per facility.
    n
        Total facilities (shared among strata by ``allocation``) or a mapping stratum → number.
    seed
        Random seed.
    strata
        Column defining the strata (e.g. ``"region"``); one stratum when ``None``.
    method
        ``"pps"`` (systematic probability proportional to ``size``) or ``"srs"`` (simple random
        sample: every facility equally likely).
    size
        Measure of size for PPS.
    allocation
        How a total ``n`` is shared among strata.
    reserves_per_stratum
        Replacements drawn per stratum. Reserves are the unselected facilities of the stratum
        in a random order (with PPS, drawn successively with probability proportional to size).
    id_column
        Facility identifier column.

    Examples
    --------
    >>> frame = pd.DataFrame({"facility_id": [f"F{i:02d}" for i in range(12)],
    ...                       "region": ["North"] * 6 + ["South"] * 6,
    ...                       "tx_curr": [50, 80, 120, 200, 90, 60] * 2})
    >>> s = stratified_sample(frame, 4, strata="region", size="tx_curr", seed=7)
    >>> s.selected.groupby("stratum").size().tolist(), len(s.reserves)
    ([2, 2], 4)
    """
    if method not in ("pps", "srs"):
        raise DesignInputError(f"method must be 'pps' or 'srs', got {method!r}")
    if method == "pps" and size is None:
        raise DesignInputError("PPS sampling needs a size column (e.g. size='tx_curr')")
    _check_frame(frame, id_column, size if method == "pps" else None)
    if reserves_per_stratum < 0:
        raise DesignInputError("reserves_per_stratum must be ≥ 0")
    rng = np.random.default_rng(seed)
    work = frame.copy()
    if strata is None:
        work["stratum"] = "all"
    else:
        if strata not in frame.columns:
            raise DesignInputError(f"the facility list has no strata column {strata!r}")
        if frame[strata].isna().any():
            raise DesignInputError(f"strata column {strata!r} has empty values")
        work["stratum"] = frame[strata].astype(str)
    counts = {str(k): int(v) for k, v in work.groupby("stratum", sort=True).size().items()}
    if isinstance(n, Mapping):
        unknown = set(n) - set(counts)
        if unknown:
            raise DesignInputError(f"unknown strata in n: {sorted(unknown)}")
        per = {s: int(n.get(s, 0)) for s in counts}
    else:
        per = allocate_sample(counts, n, allocation)
    chosen, spare = [], []
    for stratum, k in per.items():
        part = work[work["stratum"] == stratum]
        if k > len(part):
            raise DesignInputError(f"stratum {stratum!r} has {len(part)} facilities, {k} requested")
        if k == 0:
            continue
        if method == "pps":
            assert size is not None  # checked above: PPS needs a size column
            sel = pps_systematic(part, k, size=size, seed=rng, id_column=id_column)
        else:
            idx = rng.choice(len(part), size=k, replace=False)
            sel = part.iloc[np.sort(idx)].copy()
            sel["inclusion_probability"] = k / len(part)
            sel["design_weight"] = len(part) / k
            sel["certainty"] = k == len(part)
        chosen.append(sel)
        left = part[~part[id_column].isin(sel[id_column])]
        r = min(reserves_per_stratum, len(left))
        if r:
            if method == "pps":
                p = pd.to_numeric(left[size]).to_numpy(float)
                order = rng.choice(len(left), size=r, replace=False, p=p / p.sum())
            else:
                order = rng.choice(len(left), size=r, replace=False)
            res = left.iloc[order].copy()
            res["reserve_rank"] = np.arange(1, r + 1)
            spare.append(res)
    selected = pd.concat(chosen, ignore_index=True)
    reserves = (
        pd.concat(spare, ignore_index=True)
        if spare
        else work.iloc[0:0].assign(reserve_rank=pd.Series(dtype=int))
    )
    return FacilitySample(selected=selected, reserves=reserves, seed=seed, id_column=id_column)


def allocate_rollout(
    cluster_ids: Sequence[str],
    clusters_per_step: int | Sequence[int],
    *,
    seed: int,
    strata: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Randomly allocate facilities to roll-out steps (waves) of CLM.

    Parameters
    ----------
    cluster_ids
        Facility ids.
    clusters_per_step
        One number (facilities per step; must divide the number of facilities) or one number
        per step (summing to the number of facilities).
    seed
        Random seed: record it so the allocation can be re-created and audited.
    strata
        Optional stratum per facility. Facilities are shuffled within strata and dealt to the
        steps in turn, so every step gets a similar mix of strata.

    Returns
    -------
    pandas.DataFrame
        ``cluster_id``, ``step`` (1 = first wave), ``order`` (random rank), and ``stratum``
        when given.

    Examples
    --------
    >>> a = allocate_rollout(["F1", "F2", "F3", "F4", "F5", "F6"], 2, seed=42)
    >>> a.groupby("step").size().tolist()
    [2, 2, 2]
    >>> a.equals(allocate_rollout(["F1", "F2", "F3", "F4", "F5", "F6"], 2, seed=42))
    True
    """
    ids = list(cluster_ids)
    if len(set(ids)) != len(ids):
        raise DesignInputError("facility ids must be unique")
    n = len(ids)
    if isinstance(clusters_per_step, int):
        if clusters_per_step < 1 or n % clusters_per_step:
            divisors = [k for k in range(1, n + 1) if n % k == 0]
            raise DesignInputError(
                f"{n} facilities cannot be split into steps of {clusters_per_step}; "
                f"choose one of {divisors} or give a list of step sizes"
            )
        per_step = [clusters_per_step] * (n // clusters_per_step)
    else:
        per_step = [int(k) for k in clusters_per_step]
        if any(k < 1 for k in per_step) or sum(per_step) != n:
            raise DesignInputError(f"step sizes {per_step} must be ≥ 1 and sum to {n} facilities")
    rng = np.random.default_rng(seed)
    if strata is None:
        order = list(rng.permutation(n))
    else:
        if len(strata) != n:
            raise DesignInputError("give one stratum per facility")
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(strata):
            groups.setdefault(str(s), []).append(i)
        # Interleave the shuffled strata so consecutive slots (= a step) mix strata.
        shuffled = [list(rng.permutation(g)) for _, g in sorted(groups.items())]
        order = []
        while any(shuffled):
            for g in shuffled:
                if g:
                    order.append(int(g.pop()))
    steps = np.repeat(np.arange(1, len(per_step) + 1), per_step)
    out = pd.DataFrame(
        {"cluster_id": [ids[i] for i in order], "step": steps, "order": np.arange(1, n + 1)}
    )
    if strata is not None:
        out["stratum"] = [str(strata[i]) for i in order]
    return out
