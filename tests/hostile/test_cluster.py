"""Errors cross the Dask cluster whole: a library error raised in a window on a worker
reaches the user as its own type and message (one line, exit 2), and the batch log as one
line; a worker lost for good is a one-line ClusterError."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import rasterio

pytest.importorskip("distributed")

from distributed import LocalCluster  # noqa: E402

from s2clouds.errors import ClusterError, SceneFormatError, detached  # noqa: E402
from s2clouds.inference.distributed import DaskEngine  # noqa: E402
from s2clouds.inference.engine import make_job  # noqa: E402
from s2clouds.inference.options import PredictOptions, RunOptions  # noqa: E402
from s2clouds.inference.outputs import RUN_LOG  # noqa: E402
from s2clouds.inference.records import SceneRecord  # noqa: E402
from s2clouds.inference.sink import run_jobs, scene_outputs  # noqa: E402
from s2clouds.inference.window import prepare_scene  # noqa: E402
from s2clouds.io.scenes import read_scene  # noqa: E402

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(
        n_workers=1, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local.scheduler_address


def damaged_bottom(folder: Path) -> Path:
    """A 512 px band folder whose B08 strips past row ~460 are cut off: the header and the
    centre (which the client reads to check radiometry) are fine, the last windows fail on
    the workers."""
    path = folder / "B08.tif"
    with rasterio.open(path) as ds:
        assert not ds.profile.get("tiled")
    os.truncate(path, int(path.stat().st_size * 0.9))
    return folder


class Unpicklable(Exception):
    """Like GDAL's CPLE errors: its pickle does not load (another __init__ signature)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")


def test_detached_errors_pickle_without_their_cause() -> None:
    try:
        try:
            raise Unpicklable(3, "IReadBlock failed")
        except Unpicklable as cause:
            raise SceneFormatError("cannot read B08.tif; re-download it") from cause
    except SceneFormatError as exc:
        copy = detached(exc)
    assert type(copy) is SceneFormatError and str(copy) == "cannot read B08.tif; re-download it"
    assert copy.__cause__ is None and copy.__context__ is None
    assert str(pickle.loads(pickle.dumps(copy))) == str(copy)


def test_a_window_error_on_a_worker_is_one_line_exit_2(
    scheduler: str, tmp_path: Path, maker, refuse: Refuse, frozen
) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=512)
    damaged_bottom(folder)
    check = frozen(tmp_path)
    out = tmp_path / "mask.tif"
    err = refuse(["predict", str(folder), "-o", str(out), "--block", "128", "--scheduler",
                  scheduler, "--quiet", "--retries", "0"])  # fmt: skip
    assert "cannot read" in err and "B08.tif" in err and "re-download" in err
    assert "Exception(" not in err and "SceneFormatError(" not in err
    check()


def test_the_batch_log_gets_the_error_in_one_line(
    scheduler: str, tmp_path: Path, maker, capsys
) -> None:
    from s2clouds.cli.main import main

    make = maker("geotiff")
    damaged_bottom(make.write_band_folder(tmp_path / "bad", RGBN, size=512))
    make.write_band_folder(tmp_path / "good", RGBN, size=64)
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "bad"), str(tmp_path / "good"), "-o", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--block", "128", "--scheduler", scheduler, "--retries", "0", "--quiet"])
    assert exit_info.value.code == 1  # a batch with a failed scene
    failed = capsys.readouterr().err.strip().splitlines()
    assert len(failed) == 1 and failed[0].startswith(f"failed: {tmp_path / 'bad'}: cannot read")
    scenes = {Path(s["input"]).name: s for s in json.loads((out / RUN_LOG).read_text())["scenes"]}
    assert scenes["good"]["status"] == "done"
    error = scenes["bad"]["error"]
    assert error.startswith("cannot read") and "\n" not in error and "Exception" not in error
    assert not list(out.glob(".*"))


def test_a_lost_worker_is_a_one_line_cluster_error(tmp_path: Path, maker) -> None:
    from distributed import Client

    options = PredictOptions(run=RunOptions(block=64), progress=False)
    path = maker("geotiff").write_multiband(tmp_path / "s0.tif", RGBN, size=64)
    scene, model = prepare_scene(read_scene(path), options.run)
    job = make_job(0, scene, model, tmp_path / "out.tif", options.run)
    record = SceneRecord(input=str(path))

    def kill_worker(*_: object) -> None:
        os._exit(1)

    with (
        LocalCluster(
            n_workers=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as c,
        Client(c) as client,
    ):
        killing = replace(job.job(), task=kill_worker)
        run_jobs([killing], scene_outputs([job], [record], options.output), DaskEngine(client))
    assert isinstance(record.exception, ClusterError)
    assert record.error is not None and "\n" not in record.error
    assert "s0.tif" in record.error and "KilledWorker" in record.error
