"""The ``clm`` command: a thin wrapper over the library (demo data, ingest, validate, indicators, run, audit).

Every sub-command imports what it needs when it runs, so ``clm --help`` is instant. No traceback
reaches the user: a :class:`~clm_research.errors.CLMError` (a problem with the input or set-up,
its message naming file, row, column and rule) is printed as one message; a file-system error
(disk full, read-only folder, permissions) as one line naming the path and what to do; anything
else, a defect of the programme, as one line and the path of a log file holding the full
traceback (``logs/`` in the project). Exit statuses are :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "EXIT_CODES", "EXIT_FAILED", "EXIT_ERROR", "EXIT_BUG"]

#: A check failed (the gate, the disclosure audit, a country's run); outputs as documented.
EXIT_FAILED = 1
#: The input or set-up is wrong (a :class:`~clm_research.errors.CLMError`, a file-system error,
#: a command line argparse refuses): the message says what to fix.
EXIT_ERROR = 2
#: An unexpected error (a defect): the full traceback is in the log file named.
EXIT_BUG = 3
#: Every exit status of ``clm`` and its meaning (the README's table).
EXIT_CODES: dict[int, str] = {
    0: "success",
    EXIT_FAILED: "a check failed (data-quality gate, disclosure audit, a country's run)",
    EXIT_ERROR: "wrong input or set-up (the message names the file, row, column and rule), "
    "a file-system problem (disk full, read-only, permissions) or a wrong command line",
    EXIT_BUG: "unexpected error: one line, and the full traceback in logs/clm-<time>-<pid>.log",
    130: "interrupted (Ctrl-C)",
}

#: ``--scale`` presets for ``clm demo-data``: (facilities, interviews per facility-round).
SCALES: dict[str, tuple[int | None, int | None]] = {
    "default": (None, None),
    "ritshidze": (400, 100),  # Ritshidze-like: ~400 clinics × ~100 interviews per round
}


def _countries(args: argparse.Namespace, demo_only: bool = False) -> list[str]:
    from clm_research.config.country import list_countries, load_country
    from clm_research.errors import ParamsError

    known = list_countries()
    if getattr(args, "all", False) or not args.countries:
        chosen = known
        if demo_only:
            chosen = [c for c in known if load_country(c).is_demo]
        return chosen
    unknown = [c for c in args.countries if c not in known]
    if unknown:
        raise ParamsError(
            f"unknown country code(s): {', '.join(unknown)}; known: {', '.join(known)} "
            "(one params/countries/<code>.yaml per country)"
        )
    return list(args.countries)


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from clm_research.demo import write_demo

    facilities, per_round = SCALES[args.scale] if args.scale in SCALES else (None, None)
    if args.scale not in SCALES:
        try:
            factor = float(args.scale)
        except ValueError:
            from clm_research.errors import CLMError

            raise CLMError(
                f"--scale takes {', '.join(SCALES)} or a number (a multiplier of interviews per "
                f"facility-round), got {args.scale!r}"
            ) from None
        per_round = max(1, round(30 * factor))
    facilities = args.facilities or facilities
    per_round = args.interviews_per_round or per_round
    written = write_demo(
        _countries(args, demo_only=True),
        facilities=facilities,
        interviews_per_round=per_round,
        force=args.force,
    )
    for code, folder in written.items():
        print(f"{code}: demo data in {folder}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from clm_research.pipeline import cli_ingest

    return cli_ingest(_countries(args))


def _cmd_validate(args: argparse.Namespace) -> int:
    from clm_research.pipeline import cli_validate

    return cli_validate(_countries(args), args.max_share)


def _cmd_indicators(args: argparse.Namespace) -> int:
    from clm_research.report.indicator_tables import write_indicator_tables

    for code in _countries(args):
        paths, availability = write_indicator_tables(code, by_sets=args.by, ci=args.ci)
        for p in paths:
            print(f"{code}: {p}")
        if availability.tables_not_collected:
            print(f"{code}: tables not collected: {', '.join(availability.tables_not_collected)}")
        if availability.not_computed:
            print(f"{code}: {len(availability.not_computed)} indicator(s) not computed:")
            for line in availability.lines():
                print(f"  {line}")
    return 0


def _cmd_audit_disclosure(args: argparse.Namespace) -> int:
    from clm_research.config.country import load_country
    from clm_research.disclosure import PUBLISHED_GROUPINGS, audit_tables, protect_tables
    from clm_research.errors import DisclosureError
    from clm_research.framework import load_framework
    from clm_research.paths import country_report_dir
    from clm_research.tables import read_country

    failed = False
    for code in _countries(args):
        params, framework, tables = load_country(code), load_framework(code), read_country(code)
        if args.written:  # the tables on disk, as an attacker would read them
            import pandas as pd

            folder = country_report_dir(code) / "indicators"
            published = {
                name: pd.read_csv(folder / f"{name}.csv", dtype={k: "string" for k in by})
                for name, by in PUBLISHED_GROUPINGS.items()
                if (folder / f"{name}.csv").is_file()
            }
            if not published:
                raise DisclosureError(f"{code}: no indicator tables in {folder} (clm indicators)")
            audit, _ = audit_tables(
                framework, tables, published, as_of=params.as_of, exact=args.exact
            )
        else:
            try:
                protected = protect_tables(framework, tables, as_of=params.as_of)
                audit = protected.audit
                if args.exact:
                    audit, _ = audit_tables(
                        framework, tables, protected.tables, as_of=params.as_of, exact=True
                    )
            except DisclosureError as e:
                if e.audit is None:
                    raise
                audit = e.audit  # type: ignore[assignment]
        print(f"{code}: " + "\n".join(audit.lines()))
        failed |= not audit.passed
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from clm_research.run.many import cli_run

    return cli_run(args)


def _cmd_framework(args: argparse.Namespace) -> int:
    from clm_research.framework import load_framework

    fw = load_framework(args.country)
    print(f"{fw.name}: {len(fw.indicators)} indicators")
    for ind in fw.indicators:
        target = "" if ind.target is None else f" target {ind.target:g}"
        print(f"  {ind.level:<10} {ind.id:<34} {ind.type:<10} {ind.dataset:<13}{target}")
    return 0


# --- adding a country: new-country, check-mapping ------------------------------------------


def _cmd_new_country(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clm_research.onboarding import GUIDE, new_country
    from clm_research.paths import display_path

    draft, written = new_country(
        args.code,
        Path(args.from_export),
        xlsform=Path(args.xlsform) if args.xlsform else None,
        name=args.name,
        table=args.table,
        force=args.force,
    )
    print(
        f"{args.code}: read {Path(args.from_export).name} ({draft.rows} rows, "
        f"{len(draft.headers)} columns, {draft.fmt} export) as the {draft.table} table"
    )
    print("  matched (review each in the draft mapping):")
    width = max((len(m.column) for m in draft.matches), default=10)
    for m in draft.matches:
        src = f"{m.header!r}" if m.header else m.how
        flag = f"  REVIEW: {m.review}" if m.review else ""
        print(f"    {m.column:<{width}} <- {src}{flag}")
    if draft.unmatched_required:
        print(f"  could not match (required): {', '.join(draft.unmatched_required)}")
    if draft.unmatched_optional:
        print(f"  not in the export (not collected): {', '.join(draft.unmatched_optional)}")
    if draft.personal or draft.date_of_birth:
        dropped = ([draft.date_of_birth] if draft.date_of_birth else []) + draft.personal
        shown = ", ".join(repr(c[:40]) for c in dropped[:6]) + (" …" if len(dropped) > 6 else "")
        print(f"  personal data dropped at ingestion ({len(dropped)} column(s)): {shown}")
    if draft.unused:
        print(f"  export columns not used: {len(draft.unused)} (listed in the draft mapping)")
    for note in draft.notes:
        print(f"  note: {note}")
    for p in written:
        print(f"  wrote {display_path(p)}")
    print(
        f"Next: review the draft mapping, then run: clm check-mapping {args.code}  (guide: {GUIDE})"
    )
    return 0


def _cmd_check_mapping(args: argparse.Namespace) -> int:
    from clm_research.onboarding import check_mapping

    failed = False
    for code in args.countries:
        result = check_mapping(code, mapping=args.mapping)
        print("\n".join(result.lines()))
        failed |= bool(result.errors)
    return 1 if failed else 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from clm_research.schema import schema_markdown

    print(schema_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``clm`` (sub-commands and their options)."""
    parser = argparse.ArgumentParser(
        prog="clm",
        description="Community-led monitoring research: demo data, ingestion, data quality, indicators, reports.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_countries(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "countries", nargs="*", metavar="COUNTRY", help="country codes (default: all)"
        )
        p.add_argument("--all", action="store_true", help="every country in params/countries/")
        return p

    p = with_countries(
        sub.add_parser("demo-data", help="generate the synthetic demo countries into data/raw/")
    )
    p.add_argument(
        "--scale",
        default="default",
        help="default, ritshidze (400 facilities × 100 interviews), or a multiplier",
    )
    p.add_argument("--facilities", type=int, help="number of facilities (overrides --scale)")
    p.add_argument(
        "--interviews-per-round",
        type=int,
        help="interviews per facility and round (overrides --scale)",
    )
    p.add_argument("--force", action="store_true", help="regenerate even if up to date")
    p.set_defaults(func=_cmd_demo_data)

    p = with_countries(
        sub.add_parser("ingest", help="read raw exports into canonical tables (data/processed/)")
    )
    p.set_defaults(func=_cmd_ingest)

    p = with_countries(
        sub.add_parser("validate", help="run the data-quality gate; exit 1 on failure")
    )
    p.add_argument(
        "--max-share",
        type=float,
        default=None,
        help="largest share of quarantined rows that passes",
    )
    p.set_defaults(func=_cmd_validate)

    p = with_countries(
        sub.add_parser("indicators", help="write indicator tables to reports/<country>/indicators/")
    )
    p.add_argument(
        "--by",
        action="append",
        help="comma-separated group columns; repeat for several tables (default: national, facility×round, district×round×sex×key_population)",
    )
    p.add_argument("--ci", choices=("wilson", "cluster"), default="cluster", help="interval method")
    p.set_defaults(func=_cmd_indicators)

    p = with_countries(
        sub.add_parser(
            "audit-disclosure",
            help="audit the published indicator tables against an attacker holding all of "
            "them (linear programming); exit 1 if a suppressed cell can be worked out",
        )
    )
    p.add_argument(
        "--written",
        action="store_true",
        help="audit the tables written in reports/<country>/indicators/ instead of computing them",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="compute the attacker's exact interval of every audited quantity (two linear "
        "programmes each) instead of certifying the protection interval",
    )
    p.set_defaults(func=_cmd_audit_disclosure)

    from clm_research.run.many import add_run_arguments  # one definition of run's options

    p = sub.add_parser("run", help="run the country evaluation reports (papermill)")
    add_run_arguments(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("framework", help="validate and list the measurement framework")
    p.add_argument("--country", help="apply this country's overrides and extra indicators")
    p.set_defaults(func=_cmd_framework)

    # --- adding a country --------------------------------------------------------------
    p = sub.add_parser(
        "new-country",
        help="draft params/countries/CC.yaml and params/mappings/CC.yaml from an export",
    )
    p.add_argument("code", metavar="CC", help="two-letter country code")
    p.add_argument(
        "--from-export", required=True, metavar="FILE", help="the export (CSV, XLSX, JSON)"
    )
    p.add_argument("--xlsform", metavar="FORM.xlsx", help="the XLSForm of a Kobo/ODK export")
    p.add_argument("--name", help="the country's name (default: the code)")
    p.add_argument("--table", help="the canonical table the export feeds (default: best match)")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=_cmd_new_country)

    p = sub.add_parser(
        "check-mapping",
        help="dry-run a country's mapping on its raw files: per column, source, share parsed, "
        "first failing values (writes nothing)",
    )
    p.add_argument("countries", nargs="+", metavar="COUNTRY", help="country codes")
    p.add_argument("--mapping", help="a mapping file to try instead of params/mappings/CC.yaml")
    p.set_defaults(func=_cmd_check_mapping)

    p = sub.add_parser("schema", help="print the canonical data model (Markdown)")
    p.set_defaults(func=_cmd_schema)
    return parser


def _log_unexpected(command: str, argv: Sequence[str] | None, err: BaseException) -> str:
    """Write the full traceback to ``logs/clm-<time>-<pid>.log``; return its shown path."""
    import os
    import tempfile
    import traceback
    from datetime import UTC, datetime

    from clm_research.paths import display_path, project_root

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = (
        f"clm {command} ({' '.join(argv) if argv is not None else ' '.join(sys.argv[1:])})\n"
        f"{stamp}\n\n" + "".join(traceback.format_exception(err))
    )
    name = f"clm-{stamp}-{os.getpid()}.log"
    for folder in (project_root() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return display_path(path)
        except OSError:
            continue
    return "(no log file could be written)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``clm``; returns the exit status (:data:`EXIT_CODES`)."""
    from clm_research.errors import CLMError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLMError as e:
        print(f"clm {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        from clm_research.files import output_error

        if e.filename is not None:
            print(
                f"clm {args.command}: error: {output_error(e.filename, e, verb='access')}",
                file=sys.stderr,
            )
            return EXIT_ERROR
        log = _log_unexpected(args.command, argv, e)
        print(
            f"clm {args.command}: unexpected error ({type(e).__name__}: {e}); the full "
            f"traceback is in {log}",
            file=sys.stderr,
        )
        return EXIT_BUG
    except Exception as e:
        log = _log_unexpected(args.command, argv, e)
        first = (str(e).splitlines() or [""])[0][:200]
        print(
            f"clm {args.command}: unexpected error ({type(e).__name__}: {first}); this is a "
            f"defect, please report it with the log file {log}",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
