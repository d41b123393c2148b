"""Finished windows of a long run, saved beside its output so that a re-run resumes.

One ``.npz`` per window in a hidden folder next to the output, written atomically. Parts are
data, never code: they are read with ``allow_pickle=False``, and one that is truncated, not an
``.npz``, holds object arrays, or arrays of another shape or type than the caller expects for
its window counts as missing (the window is computed again). The folder's name carries a
fingerprint of what defines the result (:func:`fingerprint`), so that a run with other inputs
or options never picks up another run's parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.io.grid import Window
from s2clouds.io.write import atomic_path, write_failure

#: what a window's part must hold: array name -> (shape, dtype), dtype None for any
Expected = Mapping[str, tuple[tuple[int, ...], np.dtype[Any] | None]]


def fingerprint(paths: Sequence[str], **options: Any) -> str:
    """A short hash of input files (path, size and modification time; a remote href by its
    name) and of ``options`` (anything JSON can write, or its ``str``)."""
    stats: list[Any] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:  # a remote href, an array: by name
            stats.append((path, None, None))
        else:
            stats.append((path, st.st_size, st.st_mtime_ns))
    key = {"inputs": stats, **options}
    return hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:12]


class WindowParts:
    """The saved windows of one run in ``folder``; ``expected(window)`` says what a part of
    that window must hold to be used."""

    def __init__(self, folder: Path, expected: Callable[[Window], Expected]) -> None:
        self.folder, self.expected = folder, expected

    def path(self, window: Window) -> Path:
        return self.folder / f"r{window.row}_c{window.col}.npz"

    def save(self, window: Window, arrays: Mapping[str, np.ndarray]) -> None:
        """Save one window's ``arrays`` (atomically); a failed save (the disk is full) leaves
        no empty folder behind."""
        try:
            self.folder.mkdir(exist_ok=True)
            with atomic_path(self.path(window)) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
        except BaseException as exc:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty
            if isinstance(exc, OSError):
                raise write_failure(self.path(window), exc) from exc
            raise

    def load(self, window: Window) -> dict[str, np.ndarray] | None:
        """The saved arrays of ``window``, or None when its part is missing or not one of
        ours (see the module docstring)."""
        expected = self.expected(window)
        path = self.path(window)
        try:
            if not path.is_file():
                return None
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.asarray(data[name]) for name in expected}
        except Exception:  # truncated, garbage, pickled objects, a missing array: redo it
            return None
        for name, (shape, dtype) in expected.items():
            array = arrays[name]
            if array.shape != shape or (dtype is not None and array.dtype != dtype):
                return None
        return arrays

    def remove(self) -> None:
        """Delete every saved part (after the output is complete, or to start afresh)."""
        shutil.rmtree(self.folder, ignore_errors=True)
