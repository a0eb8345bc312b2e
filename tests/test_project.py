"""One source of truth for each list: dependencies, countries, modules, commands."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_lists_the_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(d): d.replace(" ", "") for d in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(d): d.replace(" ", "") for d in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d): d.replace(" ", "") for d in env["dependencies"] if isinstance(d, str)}
    conda.pop("python")
    conda.pop("pip")
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)]
    for block in pip_section:
        conda |= {_name(d): d.replace(" ", "") for d in block.get("pip", [])}
    assert set(conda) == set(wanted), (
        f"only in pyproject: {set(wanted) - set(conda)}; only in environment.yml: {set(conda) - set(wanted)}"
    )
    for name, spec in wanted.items():
        assert conda[name] == spec, f"{name}: pyproject {spec!r} vs environment.yml {conda[name]!r}"


def test_country_files_are_the_country_list() -> None:
    from clm_research.config.country import list_countries, load_country

    codes = list_countries()
    assert codes == sorted(p.stem for p in (ROOT / "params" / "countries").glob("*.yaml"))
    for code in codes:
        assert load_country(code).code == code


def test_architecture_maps_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    modules = sorted(
        str(p.relative_to(ROOT).with_suffix("")).replace("/", ".")
        for p in (ROOT / "clm_research").rglob("*.py")
        if p.name != "__init__.py" and not p.name.startswith("_")
    )
    packages = sorted({m.rsplit(".", 1)[0] for m in modules if m.count(".") > 1})
    missing = [
        m
        for m in modules
        if m.count(".") == 1 and f"`{m.split('.')[-1]}`" not in text and m not in text
    ]
    missing += [p for p in packages if f"`{p.split('.')[-1]}/`" not in text and p not in text]
    assert not missing, f"ARCHITECTURE.md does not mention: {missing}"


def test_readme_shows_the_two_commands_and_make_help_lists_them() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    for target in ("help", "setup", "demo-data", "report", "test", "lint", "lab", "bench"):
        assert re.search(rf"^{target}:.*## ", makefile, re.M), f"make {target} has no ## help text"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_the_package_is_type_checked_in_lint_and_ci() -> None:
    """mypy (strict) covers the whole package, runs in `make lint`, and CI runs `make lint`."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mypy = pyproject["tool"]["mypy"]
    assert mypy["files"] == ["clm_research"] and mypy["strict"] is True
    # a library without type information is named module by module, never ignored wholesale
    assert "ignore_missing_imports" not in mypy
    for override in mypy.get("overrides", []):
        if override.get("ignore_missing_imports"):
            assert all(m.endswith(".*") and m != "*" for m in override["module"])
    assert (ROOT / "clm_research" / "py.typed").is_file()
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["clm_research"]
    lint = re.search(r"^lint:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert lint and "$(BIN)/mypy" in lint.group(0)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make lint$", ci, re.M)


def test_readme_data_model_matches_the_schema() -> None:
    from clm_research.schema import TABLES

    readme = (ROOT / "README.md").read_text()
    for name in TABLES:
        assert f"`{name}`" in readme, f"README does not describe table {name}"


def test_import_is_light() -> None:
    code = (
        "import sys, clm_research, clm_research.framework, clm_research.indicators, clm_research.cli;"
        "heavy = [m for m in ('great_expectations', 'statsmodels', 'geopandas', 'seaborn', 'matplotlib', 'scipy')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing the package pulled in heavy modules: {out}"


def test_gx_analytics_are_off_after_import() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, clm_research; print(os.environ['GX_ANALYTICS_ENABLED'])",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert out == "false"


def test_data_model_document_is_generated_from_the_schema() -> None:
    from clm_research.schema import schema_markdown

    doc = (ROOT / "docs" / "data_model.md").read_text()
    assert schema_markdown().strip() in doc, (
        "docs/data_model.md is stale: run `clm schema` and paste"
    )


def test_a_demo_country_cannot_take_a_real_country_code() -> None:
    import pytest

    from clm_research.config.country import CountryParams

    base = {"name": "x", "baseline_round": "2023Q1", "period": "2024Q4", "demo": {"seed": 1}}
    CountryParams.model_validate({**base, "code": "XC"})
    for real in ("KE", "ZA", "XK"):  # Kenya, South Africa, and XK (used for Kosovo)
        with pytest.raises(ValueError, match="user-assigned code"):
            CountryParams.model_validate({**base, "code": real})
    CountryParams.model_validate({**base, "code": "KE", "demo": None})  # real data: any code
