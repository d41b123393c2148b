"""Shared test helpers: loading the fixture writers in tests/data/<dataset>/make.py."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

TESTS = Path(__file__).parent
REAL_DATA = TESTS.parent.parent / "shared" / "data" / "real"


def load_maker(dataset: str) -> ModuleType:
    """Import ``tests/data/<dataset>/make.py`` as a module (no sys.path changes)."""
    path = TESTS / "data" / dataset / "make.py"
    spec = importlib.util.spec_from_file_location(f"_make_{dataset}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def maker() -> Callable[[str], ModuleType]:
    """``maker("cloudsen12").write(tmp_path)`` style access to the fixture writers."""
    return load_maker


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real Sentinel-2 chips; tests that need them skip when absent."""
    if not REAL_DATA.exists():
        pytest.skip(f"real data folder {REAL_DATA} not present")
    return REAL_DATA


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches (measured receptive fields) go to a folder of this test session, not the
    user's."""
    import os

    os.environ["S2CLOUDS_CACHE_DIR"] = str(tmp_path_factory.mktemp("s2clouds-cache"))
