"""Two runs of a demo country on the same inputs write byte-identical tables (slow: two runs).

The country is XA with its demo shrunk to 16 facilities and 8 interviews per facility-round
(a throwaway project; the generator is seeded), run twice by ``clm run`` in subprocesses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clm_research.paths import project_root

REAL_ROOT = project_root()


def _clm(root: Path, *args: str) -> None:
    env = {**os.environ, "CLM_PROJECT_ROOT": str(root), "PYTHONPATH": str(REAL_ROOT)}
    env.pop("CLM_DATA_DIR", None)
    env.pop("CLM_REPORTS_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "clm_research.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_two_runs_write_identical_tables(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "params" / "countries").mkdir(parents=True)
    shutil.copy(REAL_ROOT / "pyproject.toml", root)
    for name in ("framework.yaml", "mappings", "plans"):
        src = REAL_ROOT / "params" / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / "params" / name)
    (root / "notebooks").symlink_to(REAL_ROOT / "notebooks")
    text = (REAL_ROOT / "params" / "countries" / "XA.yaml").read_text()
    text = re.sub(r"facilities: \d+", "facilities: 16", text)
    text = re.sub(r"interviews_per_round: \d+", "interviews_per_round: 8", text)
    (root / "params" / "countries" / "XA.yaml").write_text(text)
    _clm(root, "demo-data", "XA")
    outputs = []
    for _ in range(2):
        _clm(root, "run", "XA")
        folder = root / "reports" / "XA" / "2024Q4" / "tables"
        outputs.append({p.name: p.read_bytes() for p in sorted(folder.iterdir())})
        data = root / "data" / "processed" / "XA"
        outputs[-1].update({p.name: p.read_bytes() for p in sorted(data.glob("*.parquet"))})
    assert "client_models.parquet" in outputs[0]
    differ = sorted(k for k in outputs[0] if outputs[0][k] != outputs[1].get(k))
    assert differ == [] and outputs[0].keys() == outputs[1].keys()
