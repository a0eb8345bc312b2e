"""Which report chapters a country's data can fill, and the note a chapter shows when it cannot.

A country collects any non-empty subset of the canonical tables (many programmes run only exit
interviews and an issue log; others have only routine DHIS2 data). A chapter whose data are
absent is not executed: the report shows its title and a short "not collected in this country"
note instead (:func:`clm_research.run.country.run_country`), and the summary and
``reports/index.html`` say which chapters ran. Within a chapter that runs, a section whose data
are absent shows the same kind of note (:func:`section_note`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CHAPTER_DATA",
    "CHAPTER_TITLES",
    "ChapterStatus",
    "chapter_status",
    "chapters_of",
    "comparison_note",
    "computed_ids",
    "indicators_note",
    "map_note",
    "not_collected_note",
    "section_note",
    "tables_present",
]

#: Notebook (chapter) -> the tables it reports on: it runs when any of them is present.
#: An empty tuple: the chapter runs for every country (summary, data quality, the plan).
CHAPTER_DATA: dict[str, tuple[str, ...]] = {
    "00_summary": (),
    "01_data_quality": (),
    "02_service_quality": ("interviews", "observations"),
    "03_accountability": ("issues",),
    "04_outcomes": ("interviews",),
    "05_impact": ("routine",),
    "06_community_led": ("outreach", "organisations"),
    "07_analysis_plan": (),
}

#: Chapter titles for the summary's list of chapters (the notebooks' own headings).
CHAPTER_TITLES: dict[str, str] = {
    "00_summary": "Summary",
    "01_data_quality": "Data quality",
    "02_service_quality": "Service quality",
    "03_accountability": "The accountability loop",
    "04_outcomes": "Outcomes",
    "05_impact": "Impact: routine programme outcomes",
    "06_community_led": "Community-led services and organisations",
    "07_analysis_plan": "The pre-registered analysis plan",
}

#: What each table holds, in words, for the notes.
_TABLE_WORDS: dict[str, str] = {
    "facilities": "facility list",
    "organisations": "implementing organisations",
    "interviews": "client exit interviews",
    "observations": "facility observation checklists",
    "issues": "issue log",
    "routine": "routine programme data (DHIS2)",
    "outreach": "community-led outreach data",
}


@dataclass(frozen=True)
class ChapterStatus:
    """Whether a chapter runs for a country, and the note shown when it does not."""

    chapter: str
    ran: bool
    note: str = ""

    @property
    def label(self) -> str:
        return "ran" if self.ran else "not collected in this country"


def tables_present(country: str) -> tuple[str, ...]:
    """The canonical tables a country's processed data hold (in schema order)."""
    from clm_research.paths import processed_dir
    from clm_research.schema import TABLES

    folder = processed_dir(country)
    return tuple(t for t in TABLES if (folder / f"{t}.parquet").is_file())


def _words(tables: Iterable[str]) -> str:
    names = [_TABLE_WORDS.get(t, t) for t in tables]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def not_collected_note(tables: Iterable[str], what: str = "This chapter") -> str:
    """The note shown instead of a chapter or section whose data the country does not collect."""
    return (
        f"**Not collected in this country.** {what} reports on the {_words(tables)}; this "
        "country's data do not include them, so there is nothing to show here."
    )


def chapter_status(chapter: str, present: Iterable[str]) -> ChapterStatus:
    """Whether ``chapter`` runs on the tables ``present`` (any of its tables suffices)."""
    needs = CHAPTER_DATA.get(chapter, ())
    have = set(present)
    if not needs or have & set(needs):
        return ChapterStatus(chapter, True)
    return ChapterStatus(chapter, False, not_collected_note(needs))


def chapters_of(country: str, chapters: Iterable[str] | None = None) -> list[ChapterStatus]:
    """The status of every chapter (default: every chapter of :data:`CHAPTER_DATA`)."""
    present = tables_present(country)
    return [chapter_status(c, present) for c in (chapters or CHAPTER_DATA)]


def section_note(country: str, tables: Iterable[str], what: str = "This section") -> str | None:
    """``None`` when any of ``tables`` is present, else the "not collected" note for a section."""
    needs = tuple(tables)
    if set(needs) & set(tables_present(country)):
        return None
    return not_collected_note(needs, what)


def computed_ids(country: str, indicator_ids: Iterable[str]) -> list[str]:
    """The indicators of ``indicator_ids`` the country's data can give (order kept)."""
    from clm_research.report.context import not_computed

    missing = not_computed(country)
    return [i for i in indicator_ids if i not in missing]


def indicators_note(
    country: str, indicator_ids: Iterable[str], what: str = "This section"
) -> str | None:
    """``None`` when some of ``indicator_ids`` can be computed, else a note with the reasons."""
    from clm_research.report.context import framework_of, not_computed

    ids = list(indicator_ids)
    if computed_ids(country, ids):
        return None
    missing = not_computed(country)
    fw = framework_of(country)
    reasons = "; ".join(
        f"{fw.indicator(i).short_label or fw.indicator(i).label}: {missing[i]}" for i in ids
    )
    return f"**Not collected in this country.** {what} needs data this country does not collect ({reasons})."


def comparison_note(country: str, what: str = "This section") -> str | None:
    """``None`` when CLM and comparison facilities can be told apart, else the note.

    Effects of CLM compare facilities under CLM with facilities not (yet) under it: that needs
    the facility list with each facility's CLM start date and at least one facility of each
    kind.
    """
    from clm_research.report.context import country_tables

    fac = country_tables(country).get("facilities")
    if fac is None:
        why = "no facility list"
    elif "clm_start" not in fac.columns:
        why = "the facility list has no CLM start dates (`clm_start` not collected)"
    elif fac["clm_start"].notna().all() or fac["clm_start"].isna().all():
        why = "the facility list has no comparison facilities, or none under CLM"
    else:
        return None
    return (
        f"**Not available in this country.** {what} compares facilities under CLM with "
        f"comparison facilities; this country's data cannot tell them apart ({why})."
    )


def map_note(country: str) -> str | None:
    """``None`` when district maps can be drawn, else the note (no districts or boundaries)."""
    from clm_research.config.country import load_country
    from clm_research.report.boundaries import boundary_path
    from clm_research.report.context import country_tables

    fac = country_tables(country).get("facilities")
    if fac is None or "district" not in fac.columns:
        return (
            "**Not available in this country.** District maps place each facility in its "
            "district through the facility list, which this country's data do not include."
        )
    p = load_country(country)
    if not boundary_path(p).is_file():
        return (
            "**Not available in this country.** No district boundaries: name the boundary "
            f"file under `boundaries` in params/countries/{country}.yaml."
        )
    return None
