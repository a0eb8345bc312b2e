"""Report chapter "Community-led services and organisations": WHO SWIT outreach indicators and
each implementing organisation's status on the UNAIDS community-led criteria
(:func:`~clm_research.evaluation.community_led.assess_community_led`).

Outreach sites are never mapped or named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clm_research.report.context import country_tables, framework_of
from clm_research.report.format import Cell, Column, PresentationTable
from clm_research.report.services import indicator_display

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "outreach_ids",
    "outreach_indicators",
    "outreach_display",
    "community_led_assessment",
    "community_led_display",
]

_STATUS = {
    "meets": ("✔", "rag-green"),
    "does not meet": ("✖", "rag-red"),
    "not reported": ("?", ""),
    "for information": ("", ""),
}


def outreach_ids(country: str) -> list[str]:
    """The framework indicators computed from the outreach data (WHO SWIT)."""
    return [i.id for i in framework_of(country).indicators if i.dataset == "outreach"]


def outreach_indicators(country: str, period: str) -> pd.DataFrame:
    """WHO SWIT outreach indicators at ``period`` (full precision, for saving)."""
    from clm_research.report.context import indicator_table

    t = indicator_table(country, ("round",))
    t = t[(t["round"] == period) & t["indicator_id"].isin(outreach_ids(country))]
    return t.reset_index(drop=True)


def outreach_display(country: str, period: str) -> PresentationTable:
    """WHO SWIT outreach indicators (inputs and outcomes from the outreach data) at ``period``."""
    return indicator_display(country, period, ids=outreach_ids(country))


def community_led_assessment(country: str) -> pd.DataFrame:
    """Each implementing organisation against the UNAIDS community-led criteria (saved whole).

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


def _value_text(value: str) -> str:
    v = str(value)
    if v in ("True", "true"):
        return "yes"
    if v in ("False", "false"):
        return "no"
    return v


def community_led_display(country: str, *, per_table: int = 4) -> list[PresentationTable]:
    """Criteria down, organisations across (at most ``per_table`` per table): each cell a
    symbol (✔ meets, ✖ does not meet) and what was reported."""
    from clm_research.evaluation.community_led import assess_community_led

    organisations = country_tables(country)["organisations"]
    assessment = assess_community_led(organisations)
    long = assessment.criteria
    info = organisations.set_index("organisation_id")
    orgs = sorted(long["organisation_id"].unique())

    def header(oid: str) -> str:
        name = str(info.at[oid, "name"]) if "name" in info else oid
        cons = str(info.at[oid, "constituency"]) if "constituency" in info else ""
        return (
            f"{name} ({cons.upper() if cons == 'plhiv' else cons.replace('_', ' ')})"
            if cons
            else name
        )

    t = PresentationTable(
        [
            Column("UNAIDS criterion", align="left", wrap=True, width="30%"),
            *[Column(header(o), align="left", wrap=True) for o in orgs],
        ],
        caption="Implementing organisations against the UNAIDS community-led criteria",
    )
    by = {(r.organisation_id, r.label): r for r in long.itertuples(index=False)}
    for label in dict.fromkeys(long["label"]):
        row: list[str | Cell] = [str(label)]
        for o in orgs:
            r = by.get((o, label))
            if r is None:
                row.append(t.missing("Not assessed for this organisation."))
                continue
            symbol, css = _STATUS.get(str(r.status), ("", ""))
            value = _value_text(str(r.value))
            if str(r.status) == "for information":
                row.append(Cell(value or "–", css="missing" if not value else ""))
                continue
            if str(r.status) == "not reported":
                row.append(t.missing("Not reported by the organisation.", text="? not reported"))
                continue
            text = f"{symbol} {r.status}" + (
                f": {value}" if value and value not in ("yes", "no") else ""
            )
            row.append(Cell(text, css=css))
        t.add_row(row)
    overall = assessment.summary().set_index("organisation_id")
    final: list[str | Cell] = ["Community-led (UNAIDS definition)"]
    for o in orgs:
        verdict = str(overall.at[o, "overall"])
        ok = verdict.startswith("community-led")
        final.append(Cell(("✔ " if ok else "✖ ") + verdict, css="rag-green" if ok else "rag-red"))
    t.add_row(final)
    t.note(
        "Funding is shown for information: the UNAIDS definition asks that the organisation set "
        "its own agenda, which the criterion above it assesses."
    )
    return t.split(key_columns=1, max_columns=per_table + 1)
