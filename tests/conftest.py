"""Shared fixtures: the real reference files in ../shared/data beside the repository."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` relative to the repository root; tests that need it skip without it."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real reference data not found at {path}")
    return path
