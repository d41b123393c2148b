"""Helpers of the hostile-input suite: run the CLI as a user does, and prove that inputs
are unchanged and that nothing is left beside the outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from s2clouds.cli.main import main


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (symlinks as their target), by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def refused(argv: Iterable[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``s2clouds argv``; assert exit 2 with one line on stderr and no traceback; return it."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def freeze(root: Path) -> Callable[[], None]:
    """Record every file under ``root``; the returned check asserts that none changed or
    vanished and that nothing new appeared (no output, no temporary file)."""
    before = snapshot(root)

    def check() -> None:
        after = snapshot(root)
        changed = [name for name, digest in before.items() if after.get(name) != digest]
        assert not changed, f"inputs changed or removed: {changed}"
        assert set(after) == set(before), f"files left behind: {set(after) - set(before)}"

    return check


@pytest.fixture
def frozen() -> Callable[[Path], Callable[[], None]]:
    """:func:`freeze` for tests: ``check = frozen(tmp_path)`` ... ``check()``."""
    return freeze


@pytest.fixture
def refuse(capsys: pytest.CaptureFixture[str]) -> Callable[[Iterable[str]], str]:
    """:func:`refused` bound to the test's captured output."""
    return lambda argv: refused(argv, capsys)
