"""Publishing a CLM study: a Table 1 generator, reporting checklists, journal-ready figures.

The checklist items paraphrase STROBE (observational studies; von Elm et al. 2007), TIDieR
(describing an intervention; Hoffmann et al. 2014) and the CONSORT extensions for cluster and
stepped-wedge trials (Campbell et al. 2012; Hemming et al. 2018), keeping the items a CLM study
most often misses, each with a note on what it means for CLM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from clm_research.errors import DesignInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["table_one", "REPORTING_CHECKLIST", "reporting_checklist", "save_figure"]


def _suppress(counts: pd.DataFrame, min_cell_size: int | None, overall: bool) -> pd.DataFrame:
    """Primary and secondary (complementary) suppression of a levels × groups count table.

    Primary: ``0 < n < min_cell_size``. Secondary: a column whose total is published (the
    group's n) must not have exactly one hidden cell, nor may a row whose overall is published
    (overall = sum of the groups); the smallest other non-zero cell is hidden too, until stable.
    """
    hidden = pd.DataFrame(False, index=counts.index, columns=counts.columns)
    if not min_cell_size:
        return hidden
    hidden |= (counts > 0) & (counts < min_cell_size)
    changed = True
    while changed:
        changed = False
        lines = [pd.Index([(r, c) for r in counts.index]) for c in counts.columns]
        if overall:
            lines += [pd.Index([(r, c) for c in counts.columns]) for r in counts.index]
        for cells in lines:
            flags = [hidden.loc[r, c] for r, c in cells]
            if sum(flags) != 1:
                continue
            candidates = [
                (counts.loc[r, c], r, c)
                for (r, c), h in zip(cells, flags, strict=True)
                if not h and counts.loc[r, c] > 0
            ]
            if candidates:
                _, r, c = min(candidates)
                hidden.loc[r, c] = True
                changed = True
    return hidden


def table_one(
    data: pd.DataFrame,
    group: str,
    *,
    continuous: Sequence[str] = (),
    categorical: Sequence[str] = (),
    skewed: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    overall: bool = True,
    min_cell_size: int | None = 10,
    decimals: int = 1,
) -> pd.DataFrame:
    """Table 1: characteristics of the groups compared (e.g. CLM vs comparison facilities).

    Continuous variables are shown as mean (SD), ``skewed`` ones as median [IQR], categorical
    ones as n (%) per category (percentages of non-missing values). Missing values are counted
    on their own row, never dropped silently. Counts below ``min_cell_size`` are shown as
    ``"<10"`` (with the percentage hidden) so small groups of clients cannot be identified, and
    enough other cells are hidden (secondary suppression) that no hidden count can be
    recovered by subtraction from a group's n or from the overall column.

    Parameters
    ----------
    data
        One row per unit (facility or client).
    group
        Column defining the columns of the table (e.g. ``"arm"``).
    continuous, categorical, skewed
        Variables to summarise, by kind.
    labels
        Plain-language labels for variables.
    overall
        Add an "Overall" column.
    min_cell_size
        Small-cell threshold (``None`` or 0: no suppression).
    decimals
        Decimals for means, SDs, medians and percentages.

    Returns
    -------
    pandas.DataFrame
        Index ``(variable, level)``; one column per group (with its n in the header).

    Examples
    --------
    >>> df = pd.DataFrame({"arm": ["CLM"] * 4 + ["comparison"] * 4,
    ...                    "tx_curr": [100, 200, 300, 400, 150, 250, 350, 450],
    ...                    "type": ["clinic", "clinic", "hospital", "clinic"] * 2})
    >>> t = table_one(df, "arm", continuous=["tx_curr"], categorical=["type"], min_cell_size=0)
    >>> t.loc[("tx_curr", "mean (SD)"), "CLM (n=4)"]
    '250.0 (129.1)'
    >>> t.loc[("type", "clinic"), "comparison (n=4)"]
    '3 (75.0%)'
    """
    labels = dict(labels or {})
    missing = [c for c in (group, *continuous, *categorical, *skewed) if c not in data.columns]
    if missing:
        raise DesignInputError(f"table_one: column(s) not in the data: {', '.join(missing)}")
    if data[group].isna().any():
        raise DesignInputError(f"table_one: group column {group!r} has missing values")
    parts: list[tuple[str, pd.DataFrame]] = [
        (f"{g} (n={len(d):,})", d) for g, d in data.groupby(group, sort=True, observed=True)
    ]
    if overall:
        parts.append((f"Overall (n={len(data):,})", data))
    f = f"{{:.{decimals}f}}"
    rows: dict[tuple[str, str], dict[str, str]] = {}

    def put(var: str, level: str, col: str, text: str) -> None:
        rows.setdefault((labels.get(var, var), level), {})[col] = text

    for col, d in parts:
        for var in continuous:
            x = pd.to_numeric(d[var], errors="coerce")
            put(var, "mean (SD)", col, f"{f.format(x.mean())} ({f.format(x.std())})")
            if x.isna().any():
                put(var, "missing", col, f"{int(x.isna().sum()):,}")
        for var in skewed:
            x = pd.to_numeric(d[var], errors="coerce")
            q1, q2, q3 = x.quantile([0.25, 0.5, 0.75])
            put(var, "median [IQR]", col, f"{f.format(q2)} [{f.format(q1)}–{f.format(q3)}]")
            if x.isna().any():
                put(var, "missing", col, f"{int(x.isna().sum()):,}")
    for var in categorical:
        levels = [str(v) for v in sorted(data[var].dropna().unique(), key=str)]
        counts = pd.DataFrame(
            {
                col: [int((d[var].dropna().astype(str) == lev).sum()) for lev in levels]
                + [int(d[var].isna().sum())]
                for col, d in parts
            },
            index=[*levels, "missing"],
        )
        hidden = _suppress(counts, min_cell_size, overall)
        for col, d in parts:
            known = int(d[var].notna().sum())
            for lev in counts.index:
                n = int(counts.loc[lev, col])
                if lev == "missing" and counts.loc["missing"].sum() == 0:
                    continue
                if hidden.loc[lev, col]:
                    put(var, lev, col, f"<{min_cell_size}")
                elif lev == "missing":
                    put(var, lev, col, f"{n:,}")
                else:
                    pct = 100 * n / known if known else float("nan")
                    put(var, lev, col, f"{n:,} ({f.format(pct)}%)")
    out = pd.DataFrame.from_dict(rows, orient="index")
    out = out.reindex(columns=[c for c, _ in parts]).fillna("")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["variable", "level"])
    return out


#: (guideline, item, what to report, what it means for CLM)
REPORTING_CHECKLIST: tuple[tuple[str, str, str, str], ...] = (
    (
        "STROBE",
        "1 Title and abstract",
        "Name the study design in the title or abstract.",
        "Say 'interrupted time series', 'difference-in-differences' or 'stepped-wedge', not only 'evaluation'.",
    ),
    (
        "STROBE",
        "4 Study design",
        "Present key elements of the design early in the paper.",
        "State when CLM started at each facility and how comparison facilities were chosen.",
    ),
    (
        "STROBE",
        "5 Setting",
        "Describe settings, locations, dates of recruitment, follow-up and data collection.",
        "Countries, districts (never key-population site locations), rounds and months covered.",
    ),
    (
        "STROBE",
        "6 Participants",
        "Eligibility criteria and how participants were selected.",
        "Who was interviewed at exit (all clients? ART clients only?) and how facilities were sampled (PPS, strata).",
    ),
    (
        "STROBE",
        "7 Variables",
        "Define outcomes, exposures, confounders and effect modifiers.",
        "Give each indicator's numerator and denominator from the framework (params/framework.yaml).",
    ),
    (
        "STROBE",
        "8 Data sources",
        "Sources and methods of measurement for each variable.",
        "CLM exit interviews and observation checklists vs routine DHIS2 data; who collected them.",
    ),
    (
        "STROBE",
        "9 Bias",
        "Efforts to address potential sources of bias.",
        "Secular trends, monitors' presence changing staff behaviour, courtesy bias in exit interviews.",
    ),
    (
        "STROBE",
        "10 Study size",
        "Explain how the study size was arrived at.",
        "Report the sample size calculation with the ICC and design effect used (notebook 03).",
    ),
    (
        "STROBE",
        "12 Statistical methods",
        "Describe all statistical methods, clustering and missing data.",
        "Say how clustering by facility was handled (GEE, mixed model, clustered errors) and how open issues were censored.",
    ),
    (
        "STROBE",
        "13 Participants (results)",
        "Numbers at each stage: eligible, included, analysed.",
        "Facilities planned vs monitored per round; replacements from the reserve list and why.",
    ),
    (
        "STROBE",
        "14 Descriptive data",
        "Characteristics of participants (Table 1) and missing data.",
        "Table 1 of CLM vs comparison facilities and of interviewed clients (small cells suppressed).",
    ),
    (
        "STROBE",
        "16 Main results",
        "Unadjusted and adjusted estimates with their precision (e.g. 95% CI).",
        "Report null results and confidence intervals plainly; effects of CLM are often modest.",
    ),
    (
        "STROBE",
        "19 Limitations",
        "Discuss limitations, sources of bias or imprecision.",
        "Non-random roll-out, short series, changes in other programmes at the same time.",
    ),
    (
        "STROBE",
        "22 Funding",
        "Give the source of funding and the role of funders.",
        "Name funders (e.g. Global Fund, PEPFAR) and confirm community ownership of the data.",
    ),
    (
        "TIDieR",
        "1 Brief name",
        "A name or phrase that describes the intervention.",
        "E.g. 'Community-led monitoring of HIV clinics by people living with HIV'.",
    ),
    (
        "TIDieR",
        "2 Why",
        "Rationale, theory or goal of the elements essential to the intervention.",
        "The results chain: how monitoring → escalation → agreed actions should change services.",
    ),
    (
        "TIDieR",
        "3 What (materials)",
        "Materials used in the intervention.",
        "Questionnaires, observation checklists, issue log, dashboards, advocacy briefs.",
    ),
    (
        "TIDieR",
        "4 What (procedures)",
        "Procedures, activities and processes.",
        "The quarterly cycle: gather evidence, analyse, agree solutions with duty bearers, follow up.",
    ),
    (
        "TIDieR",
        "5 Who provided",
        "Who delivered it, their expertise and training.",
        "Community monitors: how many, from which constituencies, how trained and supported.",
    ),
    (
        "TIDieR",
        "6 How",
        "Modes of delivery (face to face, remote) and individual or group.",
        "Exit interviews, facility observation, community meetings, escalation to district/national level.",
    ),
    (
        "TIDieR",
        "7 Where",
        "Locations where the intervention occurred.",
        "Facility types and districts; keep key-population sites aggregated.",
    ),
    (
        "TIDieR",
        "8 When and how much",
        "Number of sessions, schedule, duration and intensity.",
        "Rounds per year, interviews per facility-round, meetings held.",
    ),
    (
        "TIDieR",
        "9 Tailoring",
        "What was personalised or adapted, why and how.",
        "Country additions to the framework; key-population-specific tools.",
    ),
    (
        "TIDieR",
        "10 Modifications",
        "Changes made during the study.",
        "Indicators added or dropped, roll-out delays (record them as deviations from the plan).",
    ),
    (
        "TIDieR",
        "11-12 How well",
        "Planned and actual fidelity or adherence.",
        "Facilities monitored ÷ planned, issues escalated and resolved (the framework's process indicators).",
    ),
    (
        "CONSORT-cluster",
        "Cluster design",
        "Why a cluster design; how clustering was accounted for in sample size and analysis.",
        "The ICC and cluster size assumed, and the ICC observed (report it: it helps the next study).",
    ),
    (
        "CONSORT-SW",
        "Stepped-wedge schedule",
        "The number of steps, clusters per step, periods, and a diagram of the schedule.",
        "Publish the roll-out schedule and the random seed used to allocate facilities to waves.",
    ),
)


def reporting_checklist(
    design: Literal["pre_post", "its", "did", "stepped_wedge", "cluster_rct"] | None = None,
) -> pd.DataFrame:
    """Reporting checklist items relevant to a CLM study, as a table to tick off.

    Parameters
    ----------
    design
        The study design; the CONSORT cluster items are added for ``cluster_rct`` and
        ``stepped_wedge`` (and the stepped-wedge schedule item only for ``stepped_wedge``).

    Examples
    --------
    >>> reporting_checklist("its")["guideline"].unique().tolist()
    ['STROBE', 'TIDieR']
    >>> len(reporting_checklist("stepped_wedge")) - len(reporting_checklist("its"))
    2
    """
    rows = []
    for guideline, item, report, clm in REPORTING_CHECKLIST:
        if guideline == "CONSORT-cluster" and design not in ("cluster_rct", "stepped_wedge"):
            continue
        if guideline == "CONSORT-SW" and design != "stepped_wedge":
            continue
        rows.append(
            {"guideline": guideline, "item": item, "report": report, "for_clm": clm, "done": False}
        )
    return pd.DataFrame(rows)


def save_figure(
    fig: Figure,
    name: str,
    folder: str | Path,
    *,
    dpi: int = 300,
    formats: Sequence[str] = ("png", "pdf"),
) -> list[Path]:
    """Save a figure at journal resolution (300 dpi by default) in one or more formats.

    Returns
    -------
    list of pathlib.Path
        The files written (``<folder>/<name>.<format>``); the folder is created if needed.
    """
    if dpi < 72:
        raise DesignInputError(f"dpi must be at least 72, got {dpi!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        out.append(path)
    return out
