#!/usr/bin/env bash
# Worked example of docs/own-data.md: the real Kenyan CLM client exit-survey export (Feb 2024,
# 195 interviews at 22 facilities) from the export to an HTML report with the interview chapters.
#
# The export has no licence, so it is never copied into the project: it is read from
# ../shared/reference-data/ (or from $KENYA_EXPORT). Run from anywhere:
#
#     bash docs/examples/kenya.sh
#
# Writes params/countries/KE.yaml and params/mappings/KE.yaml (replacing earlier copies),
# data/raw/KE/ and data/processed/KE/ (or under $CLM_DATA_DIR), and the report in
# reports/KE/2024Q1/ (or under $CLM_REPORTS_DIR).
set -euo pipefail

ROOT="${CLM_PROJECT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
EXPORT="${KENYA_EXPORT:-$ROOT/../shared/reference-data/kenya_clm_client_survey_2024.csv}"
CLM="${CLM:-$ROOT/.venv/bin/clm}"
EXAMPLE="$ROOT/docs/examples/kenya"   # the reviewed parameters and mapping of this export

if [ ! -f "$EXPORT" ]; then
    echo "kenya.sh: the Kenyan export is not at $EXPORT." >&2
    echo "  It is read from ../shared/reference-data/kenya_clm_client_survey_2024.csv beside the" >&2
    echo "  project (no licence: never copied into it). Set KENYA_EXPORT=/path/to/the/file.csv." >&2
    exit 3
fi
if [ ! -x "$CLM" ]; then
    CLM="$(command -v clm || true)"
    [ -n "$CLM" ] || { echo "kenya.sh: no clm command: run 'make setup' first" >&2; exit 3; }
fi
for f in "$EXAMPLE/country.yaml" "$EXAMPLE/mapping.yaml"; do
    [ -f "$f" ] || { echo "kenya.sh: $f is missing (part of the project: check out again)" >&2; exit 3; }
done
cd "$ROOT"

# 1. Draft the country's parameters and mapping from the export; the export is copied as
#    received to data/raw/KE/. --force: the example replaces the files of an earlier run.
"$CLM" new-country KE --from-export "$EXPORT" --name Kenya --force

# 2. The drafts are a starting point; this example uses the reviewed files: the mapping
#    (facility ids assigned, free text dropped, "Yes" to "was confidentiality considered?" =
#    no breach, on_art from the services answer…) and the parameters (the quarantine limit).
cp "$EXAMPLE/country.yaml" params/countries/KE.yaml
cp "$EXAMPLE/mapping.yaml" params/mappings/KE.yaml

# 3. Try the mapping on the raw file: per column, what parses; what the gate would quarantine.
"$CLM" check-mapping KE

# 4. Ingest (stage, gate, write data/processed/KE/), validate, then the report.
"$CLM" ingest KE
"$CLM" validate KE
"$CLM" run KE

echo "kenya.sh: report in ${CLM_REPORTS_DIR:-$ROOT/reports}/KE/2024Q1/report.html"
