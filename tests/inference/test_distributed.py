"""A real Dask LocalCluster on the loopback interface: batch runs, windows, a dying worker."""

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from s2clouds.cli.main import main  # noqa: E402
from s2clouds.inference.distributed import ClusterOptions, DaskEngine  # noqa: E402
from s2clouds.inference.engine import make_job, scene_window  # noqa: E402
from s2clouds.inference.options import OutputOptions, PredictOptions, RunOptions  # noqa: E402
from s2clouds.inference.outputs import RUN_LOG  # noqa: E402
from s2clouds.inference.predict import predict  # noqa: E402
from s2clouds.inference.records import SceneRecord  # noqa: E402
from s2clouds.inference.sink import run_jobs, scene_outputs  # noqa: E402
from s2clouds.inference.window import prepare_scene  # noqa: E402
from s2clouds.io.scenes import read_scene  # noqa: E402

RGBN = ["B02", "B03", "B04", "B08"]
OPTIONS = PredictOptions(
    output=OutputOptions(probabilities=True), run=RunOptions(block=64), progress=False
)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


@pytest.fixture
def client(cluster):
    with Client(cluster) as connected:
        yield connected


def read_all(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_batch_on_a_running_scheduler(cluster, tmp_path: Path, maker, monkeypatch, capsys) -> None:
    make = maker("geotiff")
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        make.write_multiband(folder / f"S2_{i}.tif", RGBN, size=128)
    (folder / "broken.tif").write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    monkeypatch.setenv("S2CLOUDS_SCHEDULER", cluster.scheduler_address)  # like the CLI option
    argv = ["predict", str(folder / "*.tif"), "-o", str(out), "--block", "64"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    printed = capsys.readouterr()
    assert f"on the Dask scheduler at {cluster.scheduler_address}" in printed.out
    assert "3 done, 0 skipped (already there), 1 failed" in printed.out
    log = json.loads((out / RUN_LOG).read_text())
    assert log["counts"] == {"done": 3, "skipped": 0, "failed": 1}
    assert log["engine"] == f"the Dask scheduler at {cluster.scheduler_address}"
    for i in range(3):
        reference = tmp_path / f"ref{i}.tif"
        predict(
            folder / f"S2_{i}.tif",
            reference,
            PredictOptions(run=RunOptions(block=64), progress=False),
        )
        np.testing.assert_array_equal(read_all(out / f"S2_{i}_cloudmask.tif"), read_all(reference))
    before = os.stat(out / "S2_0_cloudmask.tif").st_mtime_ns
    with pytest.raises(SystemExit):
        main([*argv, "--quiet"])
    assert json.loads((out / RUN_LOG).read_text())["counts"]["skipped"] == 3
    with pytest.raises(SystemExit):
        main([*argv, "--quiet", "--overwrite"])
    assert json.loads((out / RUN_LOG).read_text())["counts"]["done"] == 3
    assert os.stat(out / "S2_0_cloudmask.tif").st_mtime_ns != before


def test_windows_on_the_cluster_equal_the_single_process_output(
    cluster, tmp_path: Path, maker
) -> None:
    scene = maker("geotiff").write_multiband(tmp_path / "big.tif", RGBN, size=200)
    predict(scene, tmp_path / "serial.tif", OPTIONS)
    options = ClusterOptions(scheduler=cluster.scheduler_address, max_in_flight=3)
    result = predict(scene, tmp_path / "dask.tif", OPTIONS, cluster=options)
    assert result.shape == (200, 200) and result.class_fractions["thick cloud"] > 0.05
    for name in ("", ".proba"):
        serial, dask = (
            read_all(tmp_path / f"serial{name}.tif"),
            read_all(tmp_path / f"dask{name}.tif"),
        )
        np.testing.assert_array_equal(dask, serial)
    with rasterio.open(tmp_path / "dask.tif") as ds, rasterio.open(scene) as src:
        assert ds.transform == src.transform and ds.crs == src.crs


def dying_window_task(marker: Path):
    """A window task that kills its worker process the first time it sees a window past the
    first row (``marker`` records that it happened). A closure, so workers get it by value."""

    def task(plan, window):
        if window.row > 0 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return scene_window(plan, window)

    return task


def test_a_worker_dying_mid_run_does_not_lose_windows(client, tmp_path: Path, maker) -> None:
    path = maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=192)
    predict(path, tmp_path / "reference.tif", OPTIONS)
    scene, model = prepare_scene(read_scene(path), OPTIONS.run)
    job = make_job(0, scene, model, tmp_path / "survivor.tif", OPTIONS.run, probabilities=True)
    marker = tmp_path / "worker-died"
    workers_before = set(client.scheduler_info()["workers"])
    engine = DaskEngine(client, max_in_flight=4)
    record = SceneRecord(input=str(path))
    dying = replace(job.job(), task=dying_window_task(marker))
    run_jobs([dying], scene_outputs([job], [record], OPTIONS.output), engine)
    assert marker.exists(), "the worker was never killed"
    assert int(marker.read_text()) != os.getpid()  # it was a worker process, not this one
    assert record.status == "done", record.error
    assert set(client.scheduler_info()["workers"]) != workers_before  # the nanny replaced it
    for name in ("", ".proba"):
        np.testing.assert_array_equal(
            read_all(tmp_path / f"survivor{name}.tif"), read_all(tmp_path / f"reference{name}.tif")
        )


def test_a_window_that_always_kills_its_worker_fails_only_its_scene(
    client, tmp_path: Path, maker
) -> None:
    make = maker("geotiff")
    jobs, records = [], []
    for i, size in enumerate((128, 64)):  # s0: 4 windows, s1: 1 window
        path = make.write_multiband(tmp_path / f"s{i}.tif", RGBN, size=size)
        scene, model = prepare_scene(read_scene(path), OPTIONS.run)
        jobs.append(
            make_job(i, scene, model, tmp_path / f"out{i}.tif", OPTIONS.run, probabilities=True)
        )
        records.append(SceneRecord(input=str(path)))

    def poison_first_scene(plan, window):
        if plan.scene.product_id == "s0":
            os._exit(1)  # every try of this scene's windows kills its worker
        return scene_window(plan, window)

    # two windows in flight: s1 is submitted once s0 has failed, so no worker death hits it
    # (windows queued on a worker that dies count that death too, see the engine's notes)
    engine = DaskEngine(client, max_in_flight=2)
    poisoned = [replace(job.job(), task=poison_first_scene) for job in jobs]
    run_jobs(poisoned, scene_outputs(jobs, records, OPTIONS.output), engine)
    assert records[0].status == "failed" and "KilledWorker" in (records[0].error or "")
    assert records[1].status == "done" and (tmp_path / "out1.tif").exists()
    assert not (tmp_path / "out0.tif").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no stage files


def test_local_cluster_from_the_command_line(tmp_path: Path, maker) -> None:
    make = maker("geotiff")
    inputs = [str(make.write_multiband(tmp_path / f"t{i}.tif", RGBN, size=64)) for i in range(2)]
    out = tmp_path / "out"
    argv = ["predict", *inputs, "-o", str(out), "--workers", "2", "--threads", "--no-dashboard"]
    assert main([*argv, "--quiet"]) is None
    log = json.loads((out / RUN_LOG).read_text())
    assert log["engine"] == "a local Dask cluster (2 worker threads, 1 thread(s) each)"
    assert log["counts"] == {"done": 2, "skipped": 0, "failed": 0}


@pytest.mark.slow
def test_real_masks_on_the_cluster_equal_one_window_in_this_process(
    cluster, real_data: Path, tmp_path: Path
) -> None:
    chip = real_data / "oncloudn_chip2"
    whole = PredictOptions(output=OutputOptions(probabilities=True), progress=False)
    predict(chip, tmp_path / "serial.tif", whole)  # one 1024 px window covers the chip
    small = PredictOptions(
        run=RunOptions(block=128), output=OutputOptions(probabilities=True), progress=False
    )
    options = ClusterOptions(scheduler=cluster.scheduler_address, max_in_flight=4)
    predict(chip, tmp_path / "dask.tif", small, cluster=options)
    np.testing.assert_array_equal(
        read_all(tmp_path / "dask.tif"), read_all(tmp_path / "serial.tif")
    )
    # probabilities in whole percent: the running sums of the window features start at the
    # window edge, so float32 rounding may tip a value across a half percent
    proba_dask = read_all(tmp_path / "dask.proba.tif").astype(int)
    proba_serial = read_all(tmp_path / "serial.proba.tif").astype(int)
    assert np.abs(proba_dask - proba_serial).max() <= 1
    assert np.mean(proba_dask != proba_serial) < 1e-4
