#!/usr/bin/env bash
# Worked example of docs/own-data.md and docs/examples/malawi.md: real Malawi routine HIV data
# by district and year (the Naomi model's demo data, MIT, in data/examples/malawi/) from the
# export to an HTML report: routine indicators by district and year, the WHO data-quality
# checks, a trend figure and a district map of the real boundaries.
#
#     bash docs/examples/malawi.sh
#
# Writes params/countries/MW.yaml and params/mappings/MW.yaml (replacing earlier copies),
# data/raw/MW/ and data/processed/MW/ (or under $CLM_DATA_DIR), and the report in
# reports/MW/<period>/ (or under $CLM_REPORTS_DIR).
set -euo pipefail

ROOT="${CLM_PROJECT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CLM="${CLM:-$ROOT/.venv/bin/clm}"
DATA="${CLM_DATA_DIR:-$ROOT/data}"
EXAMPLE="$ROOT/docs/examples/malawi"
EXPORT="$ROOT/data/examples/malawi/demo_art_number.csv"

for f in "$EXPORT" "$EXAMPLE/country.yaml" "$EXAMPLE/mapping.yaml"; do
    [ -f "$f" ] || { echo "malawi.sh: $f is missing (part of the project: check out again)" >&2; exit 3; }
done
if [ ! -x "$CLM" ]; then
    CLM="$(command -v clm || true)"
    [ -n "$CLM" ] || { echo "malawi.sh: no clm command: run 'make setup' first" >&2; exit 3; }
fi
cd "$ROOT"

# 1. The country's parameters (reporting period, boundary file, which features are districts)
#    and its mapping (filter, template period, age groups summed, columns not collected).
cp "$EXAMPLE/country.yaml" params/countries/MW.yaml
cp "$EXAMPLE/mapping.yaml" params/mappings/MW.yaml

# 2. The export, as received, in the country's raw folder.
mkdir -p "$DATA/raw/MW"
cp "$EXPORT" "$DATA/raw/MW/"

# 3. Dry run, ingest, gate, report.
"$CLM" check-mapping MW
"$CLM" ingest MW      # quarantines the district-years with more suppressed than tested
"$CLM" validate MW
"$CLM" run MW

echo "malawi.sh: report in ${CLM_REPORTS_DIR:-$ROOT/reports}/MW/"
