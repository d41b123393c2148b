"""Leftovers of killed runs: a run killed with SIGKILL leaves its hidden temporary files,
the next run to the same target removes them; temporary files of live processes and of
other hosts are never touched, and neither is anything that merely looks like ours (a
user's file, a folder, a link, a FIFO)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s2clouds.inference.options import PredictOptions, RunOptions
from s2clouds.inference.predict import predict
from s2clouds.io.write import HOST, TEMPORARY_MARKER, make_temporary, remove_stale_temporaries

RGBN = ["B02", "B03", "B04", "B08"]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_run_leaves_files_that_the_next_run_removes(tmp_path: Path, maker) -> None:
    scene = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=1024)
    out = tmp_path / "out"
    out.mkdir()
    mask = out / "mask.tif"
    code = (
        "from s2clouds.cli.main import main\n"
        f"main(['predict', {str(scene)!r}, '-o', {str(mask)!r}, '--workers', '0', '--quiet',"
        " '--block', '128'])\n"
    )
    run = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    while not hidden(out) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.poll() is None, "the run finished before it could be killed"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    left = hidden(out)
    assert left and all(f".{TEMPORARY_MARKER}-{HOST}-{run.pid}." in name for name in left)
    assert not mask.exists()
    predict(scene, mask, PredictOptions(run=RunOptions(block=1024), progress=False))
    assert mask.is_file() and hidden(out) == []


def ours(host: str, pid: int, rest: str, target: str = "mask.tif") -> str:
    """A temporary name as make_temporary makes them (8 random characters, then the suffix)."""
    return f".{target}.{TEMPORARY_MARKER}-{host}-{pid}.{rest}"


def test_only_stale_files_of_this_host_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "mask.tif"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "stale": ours(HOST, dead_pid(), "abc123de.stage.tif"),
            "stale overview": ours(HOST, dead_pid(), "def456gh.part.ovr.tmp"),
            "live": ours(HOST, live.pid, "ghi789jk.part"),
            "other host": ours("elsewhere", dead_pid(), "jkl012mn.part"),
            "other target": ours(HOST, dead_pid(), "mno345pq.part", target="other.tif"),
            "not ours": ".mask.tif.notes",
            # a user's files whose names merely look like ours
            "old style": f".mask.tif.{HOST}-{dead_pid()}.my-notes.txt",
            "vm notes": ".mask.tif.vm-999999.my-notes.txt",
            "marker, other suffix": ours(HOST, dead_pid(), "abc123de.part.txt"),
            "marker, short random": ours(HOST, dead_pid(), "abc.part"),
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        removed = {p.name for p in remove_stale_temporaries(target)}
        assert removed == {names["stale"], names["stale overview"]}
        kept = set(names) - {"stale", "stale overview"}
        assert set(hidden(tmp_path)) == {names[k] for k in kept}
    finally:
        live.kill()
        live.wait()


def test_folders_links_and_fifos_named_like_ours_are_never_removed(tmp_path: Path) -> None:
    """A folder, a symlink (to a user's file elsewhere) and a FIFO with the exact name of a
    stale temporary file of a dead process: kept, and writing the target still works."""
    target = tmp_path / "mask.tif"
    folder = tmp_path / ours(HOST, dead_pid(), "abc123de.part")
    folder.mkdir()
    (folder / "inside.txt").write_text("keep me")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / ours(HOST, dead_pid(), "abc123de.stage.tif")
    link.symlink_to(precious)
    fifo = tmp_path / ours(HOST, dead_pid(), "zzz999yy.part")
    os.mkfifo(fifo)
    assert remove_stale_temporaries(target) == []
    made = make_temporary(target, ".part")  # the writer's own path: cleans first, no crash
    made.unlink()
    assert (folder / "inside.txt").read_text() == "keep me"
    assert link.is_symlink() and precious.read_text() == "keep me"
    assert fifo.exists()
