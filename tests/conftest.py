"""Shared fixtures. Real photos come from ../shared/data when it exists; tests that need them
skip cleanly where it does not (CI on a machine without the folder, or a user's clone)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("F2S_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "identities").is_dir():
        pytest.skip(f"real photos not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def identities(shared_data) -> dict:
    """person name -> sorted list of photo paths."""
    root = shared_data / "identities"
    return {p.name: sorted(q for q in p.iterdir() if q.is_file()) for p in sorted(root.iterdir()) if p.is_dir()}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own FACE2SCENE_HOME so nothing touches the user's real library."""
    home = tmp_path_factory.mktemp("f2s_home")
    monkeypatch.setenv("FACE2SCENE_HOME", str(home))
    yield
