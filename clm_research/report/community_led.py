"""Report chapter "Community-led services and organisations": WHO SWIT outreach indicators and
each implementing organisation's status on the UNAIDS community-led criteria
(:func:`~clm_research.evaluation.community_led.assess_community_led`).

Outreach sites are never mapped or named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clm_research.report.context import country_tables, framework_of
from clm_research.report.services import indicator_display

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["outreach_indicators", "community_led_assessment"]


def outreach_indicators(country: str, period: str) -> pd.DataFrame:
    """WHO SWIT outreach indicators (inputs and outcomes from the outreach data) at ``period``."""
    import pandas as pd

    fw = framework_of(country)
    ids = [i.id for i in fw.indicators if i.dataset == "outreach"]
    t = indicator_display(country, period)
    labels = {fw.indicator(i).label for i in ids}
    return t[t["indicator"].isin(labels)].reset_index(drop=True) if not t.empty else pd.DataFrame()


def community_led_assessment(country: str) -> pd.DataFrame:
    """Each implementing organisation against the UNAIDS community-led criteria.

    One row per organisation: its constituency, one column per criterion (majority of each of
    the six roles from the constituency, accountability mechanism, own agenda, funding) saying
    whether it is met and what was reported, and the overall judgement.
    """
    import pandas as pd

    from clm_research.evaluation.community_led import assess_community_led

    organisations = country_tables(country)["organisations"]
    assessment = assess_community_led(organisations)
    long = assessment.criteria
    cells = long.assign(
        shown=[
            status if value in ("", "not reported") else f"{status} ({value})"
            for status, value in zip(long["status"], long["value"], strict=True)
        ]
    )
    wide = cells.pivot(index="organisation_id", columns="label", values="shown")
    labels = list(dict.fromkeys(long["label"]))
    overall = assessment.summary().set_index("organisation_id")["overall"]
    info = organisations.set_index("organisation_id")
    rows = []
    for oid in sorted(wide.index):
        row: dict[str, object] = {
            "organisation": info.at[oid, "name"] if "name" in info else oid,
            "constituency": info.at[oid, "constituency"] if "constituency" in info else "",
        }
        row.update({label: wide.at[oid, label] for label in labels})
        row["community-led (UNAIDS)"] = overall[oid]
        rows.append(row)
    return pd.DataFrame(rows)
