"""Community-led status of implementing organisations, criterion by criterion (UNAIDS definition).

The UNAIDS multistakeholder task team (*Community-led AIDS responses*, final report, 2022) defines a community-led organisation as one where the majority
of governance, leadership, staff, spokespeople, membership and volunteers reflect and represent
the constituency; that has transparent accountability to it; and that is self-determining and
autonomous from government, commercial and donor agendas. This module reports each criterion
separately — "meets", "does not meet" or "not reported" — never one opaque score. Missing data
are "not reported", not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clm_research.derived import (
    COMMUNITY_LED_CRITERIA,
    COMMUNITY_LED_ROLES,
    community_led_criteria,
)
from clm_research.evaluation._results import EvaluationError, new_axes, require_columns

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ROLES", "CRITERIA", "STATUSES", "CommunityLedAssessment", "assess_community_led"]

#: Roles whose majority must come from the constituency (``<role>_total`` / ``<role>_constituency``).
ROLES: tuple[str, ...] = COMMUNITY_LED_ROLES
#: Every criterion assessed, in report order.
CRITERIA: tuple[str, ...] = COMMUNITY_LED_CRITERIA
STATUSES: tuple[str, ...] = ("meets", "does not meet", "not reported", "for information")
_LABELS = {
    **{f"majority_{r}": f"Majority of {r} from the constituency" for r in ROLES},
    "accountability_mechanism": "Transparent accountability mechanism to the constituency",
    "autonomy_agenda": "Priorities set by the constituency (not by funders or government)",
    "autonomy_funding": "Funding not dominated by government and donors",
}


@dataclass
class CommunityLedAssessment:
    """Per-criterion assessment; ``criteria`` is long (organisation × criterion), ``summary()`` wide."""

    criteria: pd.DataFrame
    id_column: str

    def summary(self) -> pd.DataFrame:
        """One row per organisation: a status column per criterion, counts and an overall statement."""
        wide = self.criteria.pivot(index=self.id_column, columns="criterion", values="status")
        wide = wide[[c for c in CRITERIA if c in wide.columns]]
        counted = wide.drop(
            columns=[c for c in wide.columns if (wide[c] == "for information").all()]
        )
        met = (counted == "meets").sum(axis=1)
        failed = (counted == "does not meet").sum(axis=1)
        missing = (counted == "not reported").sum(axis=1)
        overall = np.where(
            failed > 0,
            "does not meet the definition (" + failed.astype(str) + " criteria not met)",
            np.where(
                missing > 0,
                "meets every reported criterion (" + missing.astype(str) + " not reported)",
                "community-led: meets every criterion",
            ),
        )
        out = wide.assign(
            criteria_met=met,
            criteria_not_met=failed,
            criteria_not_reported=missing,
            overall=overall,
        )
        names = self.criteria.drop_duplicates(self.id_column).set_index(self.id_column)
        if "name" in names:
            out.insert(0, "name", names["name"])
        return out.reset_index()

    def plot(self, ax: Axes | None = None) -> Figure:
        """Grid of organisations × criteria coloured by status (green meets, red not, grey not reported)."""
        from matplotlib.colors import ListedColormap

        wide = self.criteria.pivot(index=self.id_column, columns="criterion", values="status")
        wide = wide[[c for c in CRITERIA if c in wide.columns]]
        codes = {"meets": 0, "does not meet": 1, "not reported": 2, "for information": 3}
        grid = wide.replace(codes).to_numpy(float)
        fig, ax = new_axes(ax, figsize=(1.2 + 0.6 * grid.shape[1], 1.5 + 0.35 * grid.shape[0]))
        cmap = ListedColormap(["#4daf4a", "#e41a1c", "#bdbdbd", "#9ecae1"])
        ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=3.5, aspect="auto")
        ax.set_xticks(
            range(grid.shape[1]),
            [c.replace("_", " ") for c in wide.columns],
            rotation=60,
            ha="right",
            fontsize="small",
        )
        ax.set_yticks(range(grid.shape[0]), wide.index.astype(str), fontsize="small")
        ax.set_title("Community-led criteria (green meets, red does not, grey not reported)")
        return fig


def assess_community_led(
    organisations: pd.DataFrame,
    *,
    id_column: str = "organisation_id",
    majority: float = 0.5,
    funding_threshold: float | None = None,
) -> CommunityLedAssessment:
    """Assess each organisation against the UNAIDS community-led criteria.

    Parameters
    ----------
    organisations
        Canonical ``organisations`` table (``<role>_total``, ``<role>_constituency`` for each of
        :data:`ROLES`, ``accountability_mechanism``, ``agenda_set_by_constituency``,
        ``funding_government_share``, ``funding_donor_share``).
    majority
        A role meets the criterion when constituency / total is strictly above this share.
    funding_threshold
        When given, ``autonomy_funding`` is met if government + donor share ≤ this value; by
        default funding shares are reported "for information" only, because the definition asks
        for autonomy from funders' *agendas*, not for a funding source.

    Returns
    -------
    CommunityLedAssessment
        ``criteria`` has organisation, criterion, label, value (e.g. "7 of 12 (58%)"), status.

    Raises
    ------
    EvaluationError
        Missing columns; more constituency members than people in a role (naming the row).
    """
    what = "assess_community_led"
    cols = [id_column] + [f"{r}_{k}" for r in ROLES for k in ("total", "constituency")]
    cols += [
        "accountability_mechanism",
        "agenda_set_by_constituency",
        "funding_government_share",
        "funding_donor_share",
    ]
    require_columns(organisations, cols, what)
    if organisations.empty:
        raise EvaluationError(f"{what}: the organisations table is empty")
    for r in ROLES:
        total = pd.to_numeric(organisations[f"{r}_total"], errors="coerce")
        const = pd.to_numeric(organisations[f"{r}_constituency"], errors="coerce")
        bad = (const > total) | (const < 0)
        if bad.any():
            idx = bad[bad].index[0]
            raise EvaluationError(
                f"{what}: row {idx!r} ({organisations.loc[idx, id_column]!r}): {r}_constituency = "
                f"{float(const[idx]):g} exceeds {r}_total = {float(total[idx]):g} "
                "(rule: inconsistent)"
            )
    status = community_led_criteria(
        organisations, majority=majority, funding_threshold=funding_threshold
    )
    rows: list[dict[str, Any]] = []
    for idx, org in organisations.iterrows():
        base: dict[str, Any] = {id_column: org[id_column]}
        if "name" in organisations:
            base["name"] = org["name"]
        for criterion in CRITERIA:
            rows.append(
                {
                    **base,
                    "criterion": criterion,
                    "value": _value(org, criterion),
                    "status": status.at[idx, criterion],
                }
            )
    out = pd.DataFrame(rows)
    out["label"] = out["criterion"].map(_LABELS)
    return CommunityLedAssessment(out, id_column)


def _value(org: pd.Series, criterion: str) -> str:
    """What was reported for one criterion, in words (e.g. "7 of 12 (58%)")."""
    if criterion.startswith("majority_"):
        role = criterion.removeprefix("majority_")
        total, const = org[f"{role}_total"], org[f"{role}_constituency"]
        if pd.isna(total) or pd.isna(const):
            return "not reported"
        if float(total) == 0:
            return "no one in role"
        return f"{float(const):g} of {float(total):g} ({float(const) / float(total):.0%})"
    if criterion == "autonomy_funding":
        gov, don = org["funding_government_share"], org["funding_donor_share"]
        if pd.isna(gov) or pd.isna(don):
            return "not reported"
        return f"government {float(gov):.0%}, donors {float(don):.0%}"
    column = {
        "accountability_mechanism": "accountability_mechanism",
        "autonomy_agenda": "agenda_set_by_constituency",
    }[criterion]
    value = org[column]
    return "not reported" if pd.isna(value) else str(value)
