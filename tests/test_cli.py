"""The `clm` command: clear messages, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

from clm_research.cli import main


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clm_research.cli", *args], capture_output=True, text=True, env=env
    )


def test_unknown_country_is_a_clear_error_without_traceback() -> None:
    res = run("demo-data", "ZQ")
    assert res.returncode == 2
    assert "unknown country code(s): ZQ; known: XA, XB" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_scale_is_explained() -> None:
    res = run("demo-data", "XA", "--scale", "huge")
    assert res.returncode == 2 and "--scale takes default, ritshidze or a number" in res.stderr


def test_framework_listing(capsys) -> None:
    assert main(["framework", "--country", "XB"]) == 0
    out = capsys.readouterr().out
    assert "37 indicators" in out and "refill_six_months" in out


def test_schema_markdown(capsys) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert "### `interviews`" in out and "`wait_minutes`" in out


def test_demo_data_writes_into_the_data_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path))
    assert main(["demo-data", "XB"]) == 0
    assert (tmp_path / "raw" / "XB" / "interviews.csv").is_file()
    assert "XB: demo data in" in capsys.readouterr().out
