"""Faults during a run never damage the last good outputs.

A throwaway project with a tiny country (XT: three facilities, a few dozen interviews, two
small notebooks) gets a last good state — published tables, quarantine, Data Docs and a report
— then each fault: a ``SIGKILL`` at each stage of ``clm ingest`` and of a country's run (a
subprocess whose function at that stage kills its own process), a full disk (a 1 MB tmpfs, when
the tests run as root), a read-only folder and a second run while the first holds the country's
lock. After each, the last good outputs are byte-identical, and the next run's start removes
every leftover (temporary folders, kernel socket folders).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from clm_research.paths import project_root

# the module's tests share one project (its last good state): one xdist worker runs them all
pytestmark = pytest.mark.xdist_group("faults")

REAL_ROOT = project_root()
BAD = Path(__file__).parent / "data" / "bad"
H = "interview_id,facility_id,date,round,sex,age,key_population,on_art,wait_minutes"
PARAMS = (
    "code: XT\nname: Test\nperiod: 2024Q1\nbaseline_round: 2024Q1\nas_of: '2024-12-31'\n"
    "quarantine_max_share: 0.2\n"
)
MAPPING = (
    "country: XT\nformat: canonical\ntables:\n  facilities: {files: [facilities.csv]}\n"
    "  interviews: {files: [interviews.csv]}\n"
)
PARAMS_CELL = 'country = "XX"\nperiod = "2000Q1"\noutput_dir = "."\nseed = 0\n'
TABLE_CELL = (
    "import pandas as pd, pathlib\n"
    "pd.DataFrame({'a': [1.5, 2.5]}).to_csv(pathlib.Path(output_dir) / 'tables' / 't.csv',"
    " index=False)\n"
)


def interviews(n: int, bad_sex: int = 0) -> str:
    facs = ["XT-F001", "XT-F002", "XT-F003"]
    rows = [
        f"XT-I{i:03d},{facs[i % 3]},2024-03-{1 + i % 28:02d},2024Q1,"
        f"{'F' if i < bad_sex else 'female'},{20 + i % 40},none,true,{5 + i % 50}"
        for i in range(n)
    ]
    return "\n".join([H, *rows]) + "\n"


def notebook(folder: Path, name: str, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(PARAMS_CELL)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), p]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny project with its last good state (ingested, validated, a report)."""
    root = tmp_path_factory.mktemp("faults") / "project"
    (root / "params" / "countries").mkdir(parents=True)
    (root / "params" / "mappings").mkdir()
    shutil.copy(REAL_ROOT / "params" / "framework.yaml", root / "params")
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    (root / "params" / "countries" / "XT.yaml").write_text(PARAMS)
    (root / "params" / "mappings" / "XT.yaml").write_text(MAPPING)
    raw = root / "data" / "raw" / "XT"
    raw.mkdir(parents=True)
    shutil.copy(BAD / "facilities.csv", raw)
    (raw / "interviews.csv").write_text(interviews(40))
    nbs = root / "notebooks" / "evaluation"
    nbs.mkdir(parents=True)
    notebook(nbs, "00_summary", ["print(country)"])
    notebook(nbs, "01_table", [TABLE_CELL])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLM_PROJECT_ROOT", str(root))
        mp.delenv("CLM_DATA_DIR", raising=False)
        mp.delenv("CLM_REPORTS_DIR", raising=False)
        assert run_py(root, "validate").returncode == 0
        assert run_py(root, "run").returncode == 0
        yield root


def env(root: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        {
            "CLM_PROJECT_ROOT": str(root),
            "PYTHONPATH": str(REAL_ROOT),
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    e.pop("CLM_DATA_DIR", None)
    e.pop("CLM_REPORTS_DIR", None)
    return e


# The child: patch one function so that its n-th call kills the process (SIGKILL: no clean-up,
# no finally, as a power cut or the OOM killer), then do the work.
CHILD = r"""
import importlib, os, signal, sys
action, target, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
if target != "-":
    mod_name, attr = target.rsplit(".", 1)
    mod = importlib.import_module(mod_name)
    orig, calls = getattr(mod, attr), [0]
    def killer(*a, **k):
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(*a, **k)
    setattr(mod, attr, killer)
if action == "ingest":
    from clm_research.pipeline import ingest_country
    ingest_country("XT")
elif action == "validate":
    from clm_research.pipeline import validate_country
    assert validate_country("XT").passed
else:
    from clm_research.run.many import run_countries
    s = run_countries(["XT"], gate=False, synthesis=False, progress=False, kernel="python3")
    print(s.format())
    sys.exit(s.exit_code)
"""


def run_py(
    root: Path, action: str, target: str = "-", nth: int = 1
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, action, target, str(nth)],
        env=env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )


def clm_ingest(root: Path) -> subprocess.CompletedProcess[str]:
    """``clm ingest XT`` as a user types it (the CLI's own messages and exit status)."""
    return subprocess.run(
        [sys.executable, "-m", "clm_research.cli", "ingest", "XT"],
        env=env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )


def outputs(root: Path) -> dict[str, bytes]:
    """Every byte of the last good outputs (not status.json, which records each attempt)."""
    out = {}
    for folder in (
        root / "data" / "processed" / "XT",
        root / "data" / "quarantine" / "XT",
        root / "reports" / "XT" / "2024Q1",
        root / "reports" / "XT" / "data_docs",
    ):
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def leftovers(root: Path) -> list[str]:
    found = []
    for folder in (
        root / "data" / "processed",
        root / "data" / "quarantine",
        root / "reports" / "XT",
        root / "reports" / "XT" / "data_docs",
        root / "reports" / "XT" / "data_docs" / "history",
    ):
        if folder.is_dir():
            found += [p.name for p in folder.iterdir() if p.name.startswith((".clm-tmp-", ".tmp-"))]
    return found


def next_start(root: Path) -> None:
    """What the next run does first (with the country's lock): remove leftovers."""
    from clm_research.files import clean_leftovers
    from clm_research.pipeline import finish_publication
    from clm_research.run.country import clean_run_leftovers

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLM_PROJECT_ROOT", str(root))
        finish_publication("XT")
        clean_leftovers(root / "data" / "processed")
        clean_leftovers(root / "data" / "quarantine")
        clean_run_leftovers("XT")


KILLS = {
    # clm ingest / validate: staging, the gate, mid-way through the new set, at the swap
    "ingest: staging": ("ingest", "clm_research.pipeline.stage_country", 1),
    "ingest: gate": ("ingest", "clm_research.pipeline.run_gate", 1),
    "ingest: second table written": ("ingest", "clm_research.pipeline.write_parquet", 2),
    "ingest: manifest": ("ingest", "clm_research.pipeline.write_json", 1),
    "ingest: publishing the set": ("ingest", "clm_research.pipeline.swap_folder", 1),
    "validate: Data Docs": ("validate", "clm_research.quality.docs.write_text", 1),
    # clm run: a notebook, the render, the publication of the report
    "run: notebooks": ("run", "clm_research.run.kernel.execute", 2),
    "run: render": ("run", "clm_research.report.html.write_report", 1),
    "run: publish": ("run", "clm_research.run.country.promote", 1),
}


@pytest.mark.parametrize("case", list(KILLS))
def test_sigkill_at_each_stage(case: str, project: Path) -> None:
    action, target, nth = KILLS[case]
    before = outputs(project)
    (project / "data" / "raw" / "XT" / "interviews.csv").write_text(interviews(41))  # new input
    try:
        proc = run_py(project, action, target, nth)
        assert proc.returncode == -9, proc.stdout + proc.stderr  # killed at that point
        assert outputs(project) == before
        next_start(project)
        assert leftovers(project) == []
        assert outputs(project) == before
        kernels = Path(tempfile.gettempdir()).glob("clm-kernel-*")
        assert [k for k in kernels if not _alive(k.name)] == []
    finally:
        (project / "data" / "raw" / "XT" / "interviews.csv").write_text(interviews(40))


def test_sigkill_between_the_swaps_finishes_the_new_set(project: Path) -> None:
    # processed tables, quarantine and Data Docs are three folders, swapped one after the
    # other; killed after the first, the next start swaps in the others (journalled, fully
    # written before the first swap), so the tables and their quarantine come from one run
    import pandas as pd

    def state() -> tuple[int, int, int]:
        processed = pd.read_parquet(project / "data" / "processed" / "XT" / "interviews.parquet")
        quarantine = pd.read_parquet(project / "data" / "quarantine" / "XT" / "interviews.parquet")
        manifest = json.loads((project / "data" / "processed" / "XT" / "manifest.json").read_text())
        assert manifest["tables"]["interviews"]["accepted"] == len(processed)
        return len(processed), len(quarantine), manifest["tables"]["interviews"]["quarantined"]

    before = outputs(project)
    assert state() == (40, 0, 0)
    # 44 interviews, 2 of them with a sex the data model does not know: 42 accepted, 2 held
    (project / "data" / "raw" / "XT" / "interviews.csv").write_text(interviews(44, bad_sex=2))
    try:
        proc = run_py(project, "ingest", "clm_research.pipeline.swap_folder", 2)
        assert proc.returncode == -9, proc.stdout + proc.stderr
        assert state() == (42, 0, 2)  # new tables beside the old quarantine: a mixed set
        next_start(project)
        assert state() == (42, 2, 2)  # the new set, whole
        assert leftovers(project) == []
        assert not (project / "data" / "processed" / ".publishing-XT.json").exists()
    finally:
        (project / "data" / "raw" / "XT" / "interviews.csv").write_text(interviews(40))
        assert run_py(project, "validate").returncode == 0  # back to the module's good state
        assert state() == (40, 0, 0)
        for name, blob in before.items():  # the report of the good state is untouched
            if name.startswith("reports/XT/2024Q1"):
                assert (project / name).read_bytes() == blob


def _alive(name: str) -> bool:
    from clm_research.files import pid_alive

    parts = name.split("-")
    return len(parts) < 4 or not parts[2].isdigit() or pid_alive(int(parts[2]))


def test_failed_gate_publishes_nothing(project: Path) -> None:
    before = outputs(project)
    (project / "data" / "raw" / "XT" / "interviews.csv").write_text(interviews(40, bad_sex=10))
    try:
        proc = run_py(project, "ingest")
        assert proc.returncode == 0, proc.stderr  # ingest_country returns; the gate failed
        assert outputs(project) == before
        rejected = sorted((project / "data" / "rejected" / "XT").iterdir())
        assert rejected and (rejected[-1].stat().st_mode & 0o777) == 0o700
        man = json.loads((rejected[-1] / "manifest.json").read_text())
        assert man["gate"]["passed"] is False and "allowed_values:sex" in man["gate"]["summary"]
        assert (rejected[-1] / "processed" / "interviews.parquet").is_file()
    finally:
        (project / "data" / "raw" / "XT" / "interviews.csv").write_text(interviews(40))


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "1m") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _small_data_dir(project: Path, tmp_path: Path) -> Path:
    """A copy of the project whose data folder is a 1 MB tmpfs holding the last good data."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, which only root can mount")
    root = tmp_path / "project"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("data"))
    return root


def test_full_disk(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _small_data_dir(project, tmp_path)
    with tmpfs(root / "data"):
        shutil.copytree(project / "data", root / "data", dirs_exist_ok=True)
        before = outputs(root)
        fd = os.open(root / "data" / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):  # fill the disk to the last byte
            while True:
                os.write(fd, b"\0" * 4096)
        with contextlib.suppress(OSError):
            os.write(fd, b"\0")
        os.close(fd)
        proc = clm_ingest(root)
        text = proc.stdout + proc.stderr
        assert proc.returncode in (1, 2) and "Traceback" not in text, text
        assert "disk is full" in text and "free some space" in text
        assert outputs(root) == before
        assert leftovers(root) == []


def test_read_only_data_folder(project: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(project, root)
    before = outputs(root)
    data = root / "data"
    if os.geteuid() == 0:  # root writes through permission bits: a read-only mount instead
        ro = subprocess.run(["mount", "--bind", "-o", "ro", str(data), str(data)])
        if ro.returncode:
            pytest.skip("cannot make a read-only bind mount here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], check=False)
    else:
        for p in [data, *data.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
    try:
        proc = clm_ingest(root)
        text = proc.stdout + proc.stderr
        assert proc.returncode in (1, 2) and "Traceback" not in text, text
        assert "read-only" in text and "data/" in text
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(data)], check=False)
        else:
            for p in [data, *data.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o755)
    assert outputs(root) == before


def test_second_run_of_a_country_is_refused(project: Path) -> None:
    from clm_research.locks import country_lock, lock_owner

    before = outputs(project)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLM_PROJECT_ROOT", str(project))
        with country_lock("XT", command="a test"):
            ingest = clm_ingest(project)
            run = run_py(project, "run")
            owner = lock_owner("XT")
    assert owner["pid"] == os.getpid() and owner["command"] == "a test" and owner["started"]
    assert ingest.returncode == 1 and "another run of this country is in progress" in ingest.stdout
    assert f"process {os.getpid()}" in ingest.stdout
    assert run.returncode == 1 and "lock" in run.stdout and "in progress" in run.stdout
    assert outputs(project) == before


def test_stale_lock_of_a_dead_process_is_taken_over(project: Path) -> None:
    # a run killed while holding the lock: the file stays, with the dead owner's record
    proc = run_py(project, "ingest", "clm_research.pipeline.run_gate", 1)
    assert proc.returncode == -9
    from clm_research.files import pid_alive

    record = json.loads((project / "data" / ".locks" / "XT.lock").read_text())
    assert not pid_alive(record["pid"])
    assert run_py(project, "ingest").returncode == 0
    after = json.loads((project / "data" / ".locks" / "XT.lock").read_text())
    assert after["pid"] != record["pid"] and not pid_alive(after["pid"])


def test_two_ingests_give_identical_tables(project: Path) -> None:
    def tables() -> dict[str, bytes]:
        return {k: v for k, v in outputs(project).items() if k.endswith(".parquet")}

    assert run_py(project, "ingest").returncode == 0
    first = tables()
    assert run_py(project, "ingest").returncode == 0
    assert tables() == first and len(first) == 4  # processed and quarantine of both tables


def test_data_docs_history_is_bounded(project: Path) -> None:
    from clm_research.quality.docs import write_data_docs

    folder = project / "reports" / "XT" / "data_docs"
    records = json.loads((folder / "expectations.json").read_text())["results"]
    scratch = project / "scratch_docs"
    shutil.copytree(folder, scratch)
    for _ in range(4):
        write_data_docs("XT", records, scratch, keep=3)
    assert len(list((scratch / "history").glob("*.json"))) == 3
    assert "Earlier validations (the last 3)" in (scratch / "index.html").read_text()
    shutil.rmtree(scratch)
