"""The canonical data model: one definition of every table, column, type, allowed value and key.

The loaders, the synthetic generator, the indicator engine (to check filters) and the
Great Expectations suites are all derived from the :data:`TABLES` declared here. Nothing else
in the package lists columns by hand.

A country is a set of tidy tables keyed by stable ids:

``facilities``
    One row per health facility (``clm_start`` empty means a comparison facility).
``interviews``
    One row per client exit interview (respondent). Personal data never reach this table.
``observations``
    One row per planned facility × round visit of the CLM monitors (checklist).
``issues``
    The CLM issue log: one row per problem found, with its escalation and resolution dates.
``routine``
    Facility × month programme data (DHIS2-like).
``organisations``
    CLM implementing organisations and the make-up of their governance, staff and membership.
``outreach``
    Community-led services (WHO SWIT): site × month × key-population group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "TABLES",
    "Column",
    "ForeignKey",
    "Table",
    "DType",
    "PERSONAL_DATA_COLUMNS",
    "ROUND_PATTERN",
    "MONTH_PATTERN",
    "table",
    "schema_markdown",
    "KEY_POPULATIONS",
    "ISSUE_CATEGORIES",
    "ESCALATION_LEVELS",
    "ISSUE_STATUSES",
    "RULES",
    "FILE_RULES",
]

DType = Literal["string", "integer", "float", "boolean", "date", "category"]

#: Quarterly CLM round, e.g. ``2024Q1`` (Ritshidze and most programmes monitor quarterly).
ROUND_PATTERN = r"^\d{4}Q[1-4]$"
#: Reporting month of routine and outreach data, e.g. ``2024-03``.
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

#: Columns that raw exports may carry and that must never pass ingestion (UNAIDS, Guidelines on protecting the confidentiality and security of HIV information, 2007).
PERSONAL_DATA_COLUMNS: tuple[str, ...] = (
    "client_name",
    "phone_number",
    "date_of_birth",
    "national_id",
    "free_text",
    "gps_latitude",
    "gps_longitude",
)

#: Names of the row-level data-quality rules. The gate writes these in the quarantine's
#: ``failed_rules`` column; the demo generator documents its planted faults with them.
RULES: dict[str, str] = {
    "type": "value cannot be read as the column's type (e.g. text in a number column, #NAME?)",
    "not_null": "a required value is missing",
    "allowed_values": "value is not one of the column's allowed values",
    "range": "value outside the column's minimum-maximum range",
    "pattern": "value does not match the column's format (e.g. round 2024Q1, period 2024-03)",
    "duplicate_key": "a second row with the same primary key",
    "unknown_reference": "refers to an id missing from the referenced table (e.g. unknown facility_id)",
    "future_date": "date, month or round after the data extraction date (e.g. DHIS2 period "
    "203105, a tablet clock in 2031)",
    "inconsistent": "related numbers disagree (e.g. vl_suppressed > vl_tested)",
    "outside_round": "the date falls outside the row's round (e.g. an interview dated "
    "2024-05-02 in round 2024Q1)",
    "personal_data": "a name, phone number, e-mail address, national id or date of birth typed "
    "into the column; the cell was masked at ingestion (e.g. [masked: phone number])",
}

#: Names of table-level failures: the whole file is refused with a DataQualityError.
FILE_RULES: dict[str, str] = {
    "missing_file": "an expected export is not in the raw folder",
    "empty_file": "the file has no bytes",
    "header_only": "the file has a header but no rows",
    "encoding": "the text is neither UTF-8 nor a declared encoding",
    "wrong_delimiter": "the file is not separated by , ; or tab as the mapping says",
    "truncated_file": "the last row is cut short",
    "missing_column": "a required column is absent",
    "wrong_file": "the columns belong to another table",
}

KEY_POPULATIONS: tuple[str, ...] = (
    "none",
    "msm",
    "sex_worker",
    "pwud",
    "transgender",
    "prisoner",
)
ISSUE_CATEGORIES: tuple[str, ...] = (
    "stock_out",
    "waiting_time",
    "staff_attitude",
    "confidentiality",
    "viral_load",
    "infrastructure",
    "opening_hours",
    "other",
)
ESCALATION_LEVELS: tuple[str, ...] = ("facility", "district", "regional", "national")
ISSUE_STATUSES: tuple[str, ...] = ("open", "escalated", "action_agreed", "resolved")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Parameters
    ----------
    name
        Column name in the canonical model (snake_case).
    dtype
        Logical type; ``category`` columns take one of ``allowed``.
    description
        What the column means, in one line.
    required
        Whether a value must be present (not null) in every row.
    allowed
        The allowed values of a ``category`` (or integer scale) column.
    minimum, maximum
        Inclusive range of a numeric column.
    pattern
        A regular expression a ``string`` column must match.
    """

    name: str
    dtype: DType
    description: str
    required: bool = False
    allowed: tuple[str | int, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    """``column`` refers to ``ref_table.ref_column`` (referential integrity)."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns, its primary key and its references to other tables."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    #: Columns shown as the table's grain in reports (e.g. facility × round).
    grain: str = ""
    #: Date-like column that places a row in time (for rounds, censoring, CLM exposure).
    time_column: str | None = None
    #: Rows describe people (a client's answers) or key-population groups at named sites: no
    #: artefact shows sample values of any of its columns (the Data Docs show counts only).
    sensitive: bool = False
    _by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})
        missing = [k for k in self.primary_key if k not in self._by_name]
        if missing:  # a programming error in this module, caught at import
            raise ValueError(f"table {self.name}: primary key column(s) {missing} not declared")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """Return the column called ``name`` (``KeyError`` naming the known columns)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"unknown column {name!r} in table {self.name!r}; "
                f"known columns: {', '.join(self.column_names)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def _bool(name: str, description: str, required: bool = False) -> Column:
    return Column(name, "boolean", description, required=required)


def _count(name: str, description: str) -> Column:
    # A count a facility or site did not report is missing, never zero (WHO Data Quality
    # Review: completeness of reporting), so no count is required.
    return Column(name, "integer", description, minimum=0)


FACILITIES = Table(
    name="facilities",
    description="Health facilities: the units CLM monitors and the comparison facilities.",
    grain="facility",
    columns=(
        # required: the key every other table refers to
        Column(
            "facility_id",
            "string",
            "Stable facility id",
            required=True,
            # ids as programmes have them: DHIS2 org-unit uids (11 letters and digits), Kenya
            # Master Facility List codes (digits), the demo's XA-F001, or names where a
            # programme has no codes (Malawi's districts report as units: "Nkhata Bay")
            pattern=r"^\w[\w .,'()/:#-]{0,79}$",
        ),
        # Name, place, type and ownership describe a facility; a facility list that lacks one
        # (a list derived from survey answers, a DHIS2 org-unit export without groups) still
        # identifies every facility, and reports show "(missing)" for the unknown attribute.
        Column("name", "string", "Facility name (public)"),
        Column("region", "string", "Region / province"),
        Column("district", "string", "District (the protective level for maps)"),
        Column(
            "type",
            "category",
            "Facility type",
            allowed=("hospital", "health_centre", "clinic", "dispensary"),
        ),
        Column(
            "ownership",
            "category",
            "Ownership",
            allowed=("public", "faith_based", "private", "ngo"),
        ),
        Column("latitude", "float", "Facility latitude (WGS84)", minimum=-90, maximum=90),
        Column("longitude", "float", "Facility longitude (WGS84)", minimum=-180, maximum=180),
        Column("clm_start", "date", "Date CLM monitoring began; empty = comparison facility"),
    ),
    primary_key=("facility_id",),
)

INTERVIEWS = Table(
    name="interviews",
    description="Client exit interviews, one row per respondent (no personal data).",
    grain="interview",
    sensitive=True,
    time_column="date",
    columns=(
        # Required: the key, the facility the answers are about, and when (date and round):
        # without them a row can be neither counted once nor placed in a facility-round.
        # Every answer is optional. Exit surveys let a client decline a question, and skip
        # logic asks some questions only of some clients (``on_art`` and the ART questions of
        # people living with HIV, not of clients who came for testing or PrEP; the wait of
        # those who waited), so a missing answer is "not asked" or "declined", never a fault;
        # each indicator's denominator names the answers it needs (``... is not null``).
        Column("interview_id", "string", "Stable interview id (or keyed pseudonym)", required=True),
        Column("facility_id", "string", "Facility of the visit", required=True),
        Column("date", "date", "Interview date", required=True),
        Column("round", "string", "CLM round (quarter)", required=True, pattern=ROUND_PATTERN),
        Column(
            "sex",
            "category",
            "Sex of the client",
            allowed=("female", "male", "other"),
        ),
        Column("age", "integer", "Age in completed years", minimum=15, maximum=100),
        Column(
            "key_population",
            "category",
            "Key-population group the client identifies with",
            allowed=KEY_POPULATIONS,
        ),
        _bool("on_art", "Client is on antiretroviral treatment (asked of people living with HIV)"),
        Column(
            "wait_minutes", "float", "Minutes from arrival to being seen", minimum=0, maximum=720
        ),
        _bool("got_all_medicines", "Client received all prescribed medicines (ART clients)"),
        Column(
            "treated_with_respect",
            "integer",
            "Treated with respect, 1 (never) to 5 (always)",
            allowed=(1, 2, 3, 4, 5),
        ),
        _bool("confidentiality_breach", "Client experienced a breach of confidentiality"),
        _bool("vl_result_received", "Client received last viral-load result (ART clients)"),
        Column(
            "satisfaction",
            "integer",
            "Overall satisfaction, 1 (very poor) to 5 (very good)",
            allowed=(1, 2, 3, 4, 5),
        ),
        _bool("denied_service", "Client was turned away without the service sought"),
        Column(
            "refill_months",
            "integer",
            "Months of ART dispensed at last refill",
            allowed=(1, 2, 3, 4, 5, 6),
        ),
    ),
    primary_key=("interview_id",),
    foreign_keys=(ForeignKey("facility_id", "facilities", "facility_id"),),
)

OBSERVATIONS = Table(
    name="observations",
    description="Facility checklist per planned monitoring visit (facility × round).",
    grain="facility × round",
    time_column="date",
    columns=(
        # Required: the key (facility × round). The visit date is empty for a visit that did
        # not happen, and a checklist item may be unanswered; an unknown ``visit_completed``
        # is left out of the share of visits completed (its denominator is the known ones).
        Column("facility_id", "string", "Facility observed", required=True),
        Column("round", "string", "CLM round (quarter)", required=True, pattern=ROUND_PATTERN),
        Column("date", "date", "Visit date (empty when the visit did not happen)"),
        _bool("visit_completed", "The planned monitoring visit took place"),
        _bool("arv_stockout", "Any ARV regimen out of stock on the day"),
        _bool("condom_stockout", "Condoms out of stock"),
        _bool("lubricant_stockout", "Lubricants out of stock"),
        _bool("prep_stockout", "PrEP out of stock"),
        _bool("opened_on_time", "Facility opened at its posted time"),
        _bool("private_consultation_space", "A private consultation space is available"),
        _bool("kp_friendly_services", "Key-population-friendly services offered"),
        _bool("feedback_meeting_held", "Monitors held a feedback meeting with facility management"),
    ),
    primary_key=("facility_id", "round"),
    foreign_keys=(ForeignKey("facility_id", "facilities", "facility_id"),),
)

ISSUES = Table(
    name="issues",
    description="The CLM issue log: problems found, escalated, agreed on and resolved.",
    grain="issue",
    time_column="identified_on",
    columns=(
        # Required: the key, the facility, the round and the date found (the start of every
        # duration). Category, severity, level and status are recorded by some issue logs
        # and not others; an issue without them still counts as found (and, by its dates,
        # as escalated or resolved); the share resolved by status counts known statuses only.
        Column("issue_id", "string", "Stable issue id", required=True),
        Column("facility_id", "string", "Facility where the issue was found", required=True),
        Column(
            "round",
            "string",
            "Round in which it was identified",
            required=True,
            pattern=ROUND_PATTERN,
        ),
        Column(
            "category",
            "category",
            "What the issue is about",
            allowed=ISSUE_CATEGORIES,
        ),
        Column("severity", "category", "Severity", allowed=("low", "medium", "high")),
        Column("identified_on", "date", "Date identified", required=True),
        Column("escalated_on", "date", "Date escalated beyond the facility"),
        Column(
            "escalation_level",
            "category",
            "Highest level it reached",
            allowed=ESCALATION_LEVELS,
        ),
        Column("action_agreed_on", "date", "Date a corrective action was agreed with duty bearers"),
        Column("resolved_on", "date", "Date resolved (empty = still open: censored)"),
        Column("status", "category", "Current status", allowed=ISSUE_STATUSES),
    ),
    primary_key=("issue_id",),
    foreign_keys=(ForeignKey("facility_id", "facilities", "facility_id"),),
)

ROUTINE = Table(
    name="routine",
    description="Routine programme data, facility × month (DHIS2-like).",
    grain="facility × month",
    time_column="period",
    columns=(
        # Required: the key (facility × month). Every count may be unreported (see _count).
        Column("facility_id", "string", "Reporting facility", required=True),
        Column("period", "string", "Reporting month", required=True, pattern=MONTH_PATTERN),
        _count("tx_curr", "People currently on ART"),
        _count("tx_new", "People newly started on ART"),
        _count("interruptions", "People with a treatment interruption (IIT)"),
        _count("vl_tested", "Viral-load results in the month"),
        _count("vl_suppressed", "Of those, suppressed (< 1000 copies/mL)"),
        _count("prep_new", "People newly started on PrEP"),
        _count("tests", "HIV tests done"),
        _count("positives", "Of those, positive"),
    ),
    primary_key=("facility_id", "period"),
    foreign_keys=(ForeignKey("facility_id", "facilities", "facility_id"),),
)

ORGANISATIONS = Table(
    name="organisations",
    description="CLM implementing organisations (UNAIDS community-led definition criteria).",
    grain="organisation",
    columns=(
        # Required: the key and the public name (organisations are named in reports). The
        # constituency and every criterion may be unreported: the community-led assessment
        # shows "not reported" for them.
        Column("organisation_id", "string", "Stable organisation id", required=True),
        Column("name", "string", "Organisation name (public)", required=True),
        Column(
            "constituency",
            "category",
            "Constituency it represents",
            allowed=(
                "plhiv",
                "sex_worker",
                "msm",
                "pwud",
                "transgender",
                "women",
                "youth",
                "mixed",
            ),
        ),
        *(
            col
            for role in (
                "governance",
                "leadership",
                "staff",
                "spokespeople",
                "members",
                "volunteers",
            )
            for col in (
                _count(f"{role}_total", f"People in {role}"),
                _count(f"{role}_constituency", "Of those, from the constituency"),
            )
        ),
        _bool(
            "accountability_mechanism", "Transparent accountability mechanism to the constituency"
        ),
        Column(
            "funding_government_share",
            "float",
            "Share of funding from government",
            minimum=0,
            maximum=1,
        ),
        Column(
            "funding_donor_share",
            "float",
            "Share of funding from international donors",
            minimum=0,
            maximum=1,
        ),
        _bool("agenda_set_by_constituency", "Priorities set by the constituency, not by funders"),
        _count("monitors_trained", "CLM monitors trained in the year"),
        _count("monitors_planned", "CLM monitors planned in the year"),
        _count("reports_published", "CLM reports published in the year"),
    ),
    primary_key=("organisation_id",),
)

OUTREACH = Table(
    name="outreach",
    description="Community-led services (WHO SWIT): outreach site × month × key-population group.",
    grain="site × month × group",
    sensitive=True,
    time_column="period",
    columns=(
        # Required: the key (site × month × group), the implementing organisation it is
        # reported by, and the district: the only place of a site that is ever published, so
        # a row without it could be shown only by naming its site.
        Column("site_id", "string", "Outreach site (never mapped)", required=True),
        Column("organisation_id", "string", "Implementing organisation", required=True),
        Column(
            "district", "string", "District of the site (the only place published)", required=True
        ),
        Column("period", "string", "Reporting month", required=True, pattern=MONTH_PATTERN),
        Column(
            "kp_group",
            "category",
            "Key-population group",
            required=True,
            allowed=KEY_POPULATIONS[1:],
        ),
        _count("size_estimate", "Size estimate of the group at the site"),
        _count("individuals_contacted", "Individuals contacted one-to-one in the month"),
        _count("outreach_workers", "Paid peer outreach workers"),
        _count("condoms_distributed", "Condoms distributed"),
        _count("condoms_required", "Condoms required (need estimate)"),
        _count("lubricants_distributed", "Lubricants distributed"),
        _count("lubricants_required", "Lubricants required"),
        _count("needles_distributed", "Needles and syringes distributed"),
        _count("needles_required", "Needles and syringes required"),
        _count("referrals_made", "Referrals to clinical services"),
        _count("referrals_completed", "Referrals completed"),
        _count("dic_visits", "Drop-in-centre visits"),
        _count("violence_reported", "Violence incidents reported"),
        _count("violence_responded_24h", "Of those, responded to within 24 hours"),
    ),
    primary_key=("site_id", "period", "kp_group"),
    foreign_keys=(ForeignKey("organisation_id", "organisations", "organisation_id"),),
)

#: Every canonical table, by name, in load order (referenced tables first).
TABLES: dict[str, Table] = {
    t.name: t
    for t in (FACILITIES, ORGANISATIONS, INTERVIEWS, OBSERVATIONS, ISSUES, ROUTINE, OUTREACH)
}


def table(name: str) -> Table:
    """Return the canonical table ``name``, or raise ``KeyError`` listing the known tables."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}") from None


def schema_markdown() -> str:
    """Render the data model as Markdown (used by ``clm schema`` and the README check)."""
    lines: list[str] = []
    for t in TABLES.values():
        lines += [f"### `{t.name}` ({t.grain})", "", t.description, ""]
        key = ", ".join(t.primary_key)
        lines += [f"Key: `{key}`."]
        if t.sensitive:
            lines += [
                "Sensitive: rows describe people or key-population sites; no artefact shows "
                "sample values of them (see docs/data-protection.md)."
            ]
        for fk in t.foreign_keys:
            lines += [f"`{fk.column}` → `{fk.ref_table}.{fk.ref_column}`."]
        lines += [
            "",
            "| column | type | required | allowed / range | meaning |",
            "|---|---|---|---|---|",
        ]
        for c in t.columns:
            rule = ""
            if c.allowed is not None:
                rule = ", ".join(str(a) for a in c.allowed)
            elif c.minimum is not None or c.maximum is not None:
                rule = f"{c.minimum if c.minimum is not None else ''}–{c.maximum if c.maximum is not None else ''}"
            elif c.pattern:
                rule = f"`{c.pattern}`"
            lines.append(
                f"| `{c.name}` | {c.dtype} | {'yes' if c.required else ''} | {rule} | {c.description} |"
            )
        lines.append("")
    return "\n".join(lines)
