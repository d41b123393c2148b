"""Leftovers of killed runs: a run killed with SIGKILL leaves its hidden temporary files,
the next run to the same target removes them; temporary files of live processes and of
other hosts are never touched."""

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
from s2clouds.io.write import HOST, remove_stale_temporaries

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
    assert left and all(f".{HOST}-{run.pid}." in name for name in left)
    assert not mask.exists()
    predict(scene, mask, PredictOptions(run=RunOptions(block=1024), progress=False))
    assert mask.is_file() and hidden(out) == []


def test_only_stale_files_of_this_host_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "mask.tif"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "stale": f".mask.tif.{HOST}-{dead_pid()}.abc123.stage.tif",
            "stale overview": f".mask.tif.{HOST}-{dead_pid()}.def456.part.ovr.tmp",
            "live": f".mask.tif.{HOST}-{live.pid}.ghi789.part",
            "other host": f".mask.tif.elsewhere-{dead_pid()}.jkl012.part",
            "other target": f".other.tif.{HOST}-{dead_pid()}.mno345.part",
            "not ours": ".mask.tif.notes",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        removed = {p.name for p in remove_stale_temporaries(target)}
        assert removed == {names["stale"], names["stale overview"]}
        kept = {"live", "other host", "other target", "not ours"}
        assert set(hidden(tmp_path)) == {names[k] for k in kept}
    finally:
        live.kill()
        live.wait()
