"""Shared fixtures: a sandbox for every file a test writes, the Agg backend, seeded demo data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault(
    "OPENBLAS_NUM_THREADS", "1"
)  # process parallelism; BLAS threads oversubscribe
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["GX_ANALYTICS_ENABLED"] = "false"

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference-data"


@pytest.fixture(autouse=True, scope="session")
def _sandbox_outputs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Send data/ and reports/ writes of every test to a temporary folder, never the repo."""
    base = tmp_path_factory.mktemp("clm-sandbox")
    os.environ["CLM_PROJECT_ROOT"] = str(ROOT)
    os.environ["CLM_DATA_DIR"] = str(base / "data")
    os.environ["CLM_REPORTS_DIR"] = str(base / "reports")


@pytest.fixture(scope="session")
def demo_xa():
    """The demo country XA as generated from its parameters (clean, raw, truth)."""
    from clm_research.demo import generate_country

    return generate_country("XA")


@pytest.fixture(scope="session")
def framework_xa():
    from clm_research.framework import load_framework

    return load_framework("XA")


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """../shared/reference-data, or skip when this checkout has no shared folder."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent (outside the shared workspace)")
    return SHARED
