"""The composite run on synthetic acquisitions: the properties every method must keep."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.errors import BandError, CRSMismatchError, SceneFormatError
from s2clouds.mosaic.composite import CompositeOptions, output_paths, run_composite
from s2clouds.mosaic.warp import GridRequest

from .conftest import (
    BANDS,
    CLEAR_BLUE_DN,
    clear_surface,
    cloudy,
    make_series,
    write_item,
    write_tif,
)

CLOUD_DN_MIN = 6000
FAST = CompositeOptions(scorer="test-blue", block=16, progress=False)


def _run(inputs, out: Path, **changes):
    options = CompositeOptions(**{**FAST.__dict__, **changes})
    return run_composite([str(p) for p in inputs], out, options)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _stack(paths) -> np.ndarray:
    return np.stack([_read(p) for p in paths])


def _info(out: Path) -> np.ndarray:
    return _read(output_paths(out)["info"])


@pytest.mark.parametrize("method", ["best", "medoid", "ranked", "median", "percentile:25", "mean"])
def test_cloudy_observation_is_never_used_when_a_clear_one_exists(
    series: list[Path], tmp_path: Path, method: str
) -> None:
    out = tmp_path / "c.tif"
    _run(series, out, method=method)
    result = _read(out)
    stack = _stack(series)
    clear = stack[:, 0] < CLEAR_BLUE_DN
    any_clear = clear.any(axis=0)
    # composite blue is a clear value wherever a clear observation exists
    assert (result[0][any_clear] < CLEAR_BLUE_DN).all()
    lowest = np.where(clear[:, None], stack, 65535).min(axis=0)
    highest = np.where(clear[:, None], stack, 0).max(axis=0)
    inside = (result >= lowest) & (result <= highest)
    assert inside[:, any_clear].all()
    assert (result[:, ~any_clear] == 0).all()  # no data


@pytest.mark.parametrize("method", ["best", "medoid", "ranked"])
def test_best_and_medoid_are_one_input_spectrum_bit_for_bit(
    series: list[Path], tmp_path: Path, method: str
) -> None:
    out = tmp_path / "c.tif"
    _run(series, out, method=method)
    result, info, stack = _read(out), _info(out), _stack(series)
    start = dt.date(2021, 6, 1)
    doys = [(start + dt.timedelta(days=10 * k)).timetuple().tm_yday for k in range(len(series))]
    rows, cols = np.nonzero(info[0] > 0)
    assert len(rows) > 1000
    for r, c in zip(rows, cols, strict=True):
        k = doys.index(int(info[1, r, c]))
        assert np.array_equal(result[:, r, c], stack[k, :, r, c])
        assert stack[k, 0, r, c] < CLEAR_BLUE_DN


def test_observation_count_equals_brute_force(series: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "c.tif"
    summary = _run(series, out).summary_data
    stack = _stack(series)
    brute = (stack[:, 0] < CLEAR_BLUE_DN).sum(axis=0)
    assert np.array_equal(_info(out)[0], brute)
    assert summary["pixels_without_clear_observation"] == int((brute == 0).sum()) == 1
    for entry, k in zip(summary["inputs"], range(len(series)), strict=True):
        assert entry["clear_pixels"] == int((stack[k, 0] < CLEAR_BLUE_DN).sum())


@pytest.mark.parametrize("method", ["best", "medoid", "ranked", "median", "mean"])
def test_result_does_not_depend_on_input_order(tmp_path: Path, method: str) -> None:
    # equal quality everywhere (no cloud): every pixel is a tie, broken by date
    paths = [
        write_tif(tmp_path / f"in{k}.tif", clear_surface(k), date=dt.date(2021, 1, 1 + k))
        for k in range(4)
    ]
    _run(paths, tmp_path / "a.tif", method=method)
    _run(paths[::-1][1:] + paths[-1:], tmp_path / "b.tif", method=method)
    assert np.array_equal(_read(tmp_path / "a.tif"), _read(tmp_path / "b.tif"))
    assert np.array_equal(_info(tmp_path / "a.tif"), _info(tmp_path / "b.tif"))


def test_one_input(tmp_path: Path) -> None:
    data = cloudy(clear_surface(3), slice(0, 5), slice(0, 5))
    path = write_tif(tmp_path / "only.tif", data, date=dt.date(2020, 2, 3))
    out = tmp_path / "c.tif"
    summary = _run([path], out, method="median").summary_data
    result = _read(out)
    assert np.array_equal(result[:, 5:, 5:], data[:, 5:, 5:])
    assert (result[:, :5, :5] == 0).all()
    assert summary["pixels_without_clear_observation"] == 25
    assert _read(out).dtype == np.uint16


def test_no_clear_observation_gives_nodata_counted(tmp_path: Path) -> None:
    paths = [
        write_tif(tmp_path / f"in{k}.tif", cloudy(clear_surface(k), slice(None), slice(None)))
        for k in range(2)
    ]
    out = tmp_path / "c.tif"
    summary = _run(paths, out).summary_data
    assert (_read(out) == 0).all()
    assert summary["share_without_clear_observation"] == 1.0
    assert [i["clear_share"] for i in summary["inputs"]] == [0.0, 0.0]
    with rasterio.open(out) as ds:
        assert ds.nodata == 0


def _feature_scene(size: int = 60) -> np.ndarray:
    """Clear surface with a dark square (NIR 500) of 6 x 6 px (60 m) at rows/cols 24..30."""
    data = clear_surface(1, size=size)
    data[3, 24:30, 24:30] = 500
    return data


def _centroid(image: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero((image[3] > 0) & (image[3] < 1200))
    return np.array([rows.mean(), cols.mean()])


@pytest.mark.parametrize(("crs", "resolution"), [("EPSG:32632", 10.0), ("EPSG:32633", 20.0)])
def test_other_crs_and_resolution_land_on_the_target_grid(
    tmp_path: Path, crs: str, resolution: float
) -> None:
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    truth = _feature_scene()
    truth_path = write_tif(tmp_path / "truth.tif", truth)
    with rasterio.open(truth_path) as ds:
        transform, width, height = calculate_default_transform(
            ds.crs, crs, ds.width, ds.height, *ds.bounds, resolution=resolution
        )
        moved = np.zeros((4, height, width), np.uint16)
        reproject(
            truth,
            moved,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=transform,
            dst_crs=crs,
            resampling=Resampling.average if resolution > 10 else Resampling.bilinear,
            src_nodata=0,
            dst_nodata=0,
        )
    moved_path = write_tif(tmp_path / "moved.tif", moved, crs=crs, transform=transform)
    out = tmp_path / "c.tif"
    _run(
        [moved_path],
        out,
        grid=GridRequest(like=str(truth_path)),
    )
    result = _read(out)
    assert result.shape == truth.shape
    offset = _centroid(result) - _centroid(truth)
    assert np.abs(offset).max() <= 0.5, offset


def test_default_grid_covers_the_union_in_the_first_inputs_crs(tmp_path: Path) -> None:
    from affine import Affine

    a = write_tif(tmp_path / "a.tif", clear_surface(0), date=dt.date(2021, 1, 1))
    shifted = Affine(10, 0, 500_200.0, 0, -10, 5_000_100.0)
    b = write_tif(tmp_path / "b.tif", clear_surface(1), transform=shifted, date=dt.date(2021, 1, 2))
    out = tmp_path / "c.tif"
    summary = _run([b, a], out).summary_data
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.transform == Affine(10, 0, 500_000.0, 0, -10, 5_000_100.0)
        assert ds.shape == (50, 60)
    assert summary["inputs"][0]["path"] == str(a)  # canonical order: by date


def test_stac_items_and_a_folder_of_items(tmp_path: Path) -> None:
    tifs = make_series(tmp_path / "tifs", n=3)
    items = tmp_path / "items"
    items.mkdir()
    for k, tif in enumerate(tifs):
        write_item(items / f"item{k}.json", tif, dt.date(2022, 3, 1 + k))
    out = tmp_path / "c.tif"
    summary = _run([items], out, method="best").summary_data
    assert [i["day_of_year"] for i in summary["inputs"]] == [60, 61, 62]  # item datetimes
    direct = tmp_path / "d.tif"
    _run(tifs, direct, method="best")
    assert np.array_equal(_read(out), _read(direct))


# ----------------------------------------------------------------------------- bad input
def _nothing_written(out: Path) -> None:
    for path in output_paths(out).values():
        assert not path.exists(), path


def test_no_overlap_with_the_target_grid(series: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "c.tif"
    with pytest.raises(CRSMismatchError, match="overlap"):
        _run(series, out, grid=GridRequest(bounds=(0.0, 0.0, 1000.0, 1000.0)))
    _nothing_written(out)


def test_one_input_off_the_grid_is_refused_or_dropped(series: list[Path], tmp_path: Path) -> None:
    from affine import Affine

    far = write_tif(
        tmp_path / "far.tif", clear_surface(9), transform=Affine(10, 0, 900_000, 0, -10, 4_000_000)
    )
    grid = GridRequest(bounds=(500_000.0, 4_999_600.0, 500_400.0, 5_000_000.0))
    out = tmp_path / "c.tif"
    with pytest.raises(CRSMismatchError, match="far.tif"):
        _run([*series, far], out, grid=grid)
    _nothing_written(out)
    with pytest.warns(UserWarning, match="far.tif"):
        summary = _run([*series, far], out, grid=grid, drop_incomplete=True).summary_data
    assert [r["path"] for r in summary["left_out"]] == [str(far)]


def test_missing_band_is_refused_or_dropped(series: list[Path], tmp_path: Path) -> None:
    three = write_tif(tmp_path / "three.tif", clear_surface(7)[:3], bands=BANDS[:3])
    out = tmp_path / "c.tif"
    with pytest.raises(BandError, match="three.tif lacks band"):
        _run([*series, three], out)
    _nothing_written(out)
    with pytest.warns(UserWarning, match="three.tif"):
        summary = _run([*series, three], out, drop_incomplete=True).summary_data
    assert len(summary["inputs"]) == len(series)
    assert "B08" in summary["left_out"][0]["reason"]


def test_unreadable_input_is_reported_and_the_others_go_on(
    series: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff at all")
    out = tmp_path / "c.tif"
    summary = _run([*series, broken], out).summary_data
    assert summary["left_out"][0]["path"] == str(broken)
    assert len(summary["inputs"]) == len(series)
    out2 = tmp_path / "d.tif"
    with pytest.raises(SceneFormatError, match="no input could be read"):
        _run([broken, tmp_path / "missing.tif"], out2)
    _nothing_written(out2)


def test_interrupted_run_leaves_nothing_and_resumes(
    series: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import s2clouds.mosaic.composite as composite

    real = composite.composite_window
    calls = {"n": 0}

    def flaky(plan, window):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(plan, window)

    out = tmp_path / "c.tif"
    monkeypatch.setattr(composite, "composite_window", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run(series, out)
    _nothing_written(out)
    parts = list(tmp_path.glob(".c.tif.parts-*"))
    assert len(parts) == 1 and len(list(parts[0].glob("*.npz"))) == 3
    monkeypatch.setattr(composite, "composite_window", real)
    options = CompositeOptions(**FAST.__dict__)
    with caplog.at_level(logging.INFO, logger="s2clouds.mosaic.composite"):
        run_composite([str(p) for p in series], out, options)
    assert any("resuming: 3 of 9 windows" in r.getMessage() for r in caplog.records)
    assert not list(tmp_path.glob(".c.tif.parts-*"))
    fresh = tmp_path / "fresh.tif"
    _run(series, fresh)
    assert np.array_equal(_read(out), _read(fresh))


@pytest.mark.parametrize("method", ["medoid", "ranked"])  # ranked: the ranking pass too
def test_dask_cluster_gives_the_serial_result(
    series: list[Path], tmp_path: Path, method: str
) -> None:
    from s2clouds.inference.distributed import ClusterOptions

    serial = tmp_path / "serial.tif"
    _run(series, serial, method=method)
    out = tmp_path / "dask.tif"
    options = CompositeOptions(**{**FAST.__dict__, "method": method})
    cluster = ClusterOptions(workers=2, processes=False, dashboard=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_composite([str(p) for p in series], out, options, cluster=cluster)
    assert "Dask" in result.engine
    assert np.array_equal(_read(out), _read(serial))
    assert np.array_equal(_info(out), _info(serial))


def test_default_model_and_scorer(tmp_path: Path) -> None:
    """The default path: the automatic model choice and the ``probability`` scorer."""
    paths = make_series(tmp_path / "in", n=3)
    out = tmp_path / "c.tif"
    options = CompositeOptions(block=64, progress=False)
    summary = run_composite([str(p) for p in paths], out, options).summary_data
    assert summary["model"] == "s2clouds-pixel-rgbn" and summary["scorer"] == "probability"
    result, stack = _read(out), _stack(paths)
    cloud = stack[:, 0] >= CLOUD_DN_MIN
    picked = _info(out)[1] > 0
    # where one acquisition is cloud-free the best pixel never comes from a cloud
    assert (result[0][picked & ~cloud.all(0)] < CLEAR_BLUE_DN).mean() > 0.98


def test_mixed_utm_zones_on_the_default_grid(tmp_path: Path) -> None:
    """UTM 33 (first by date, cloudy over the feature) and UTM 32 (clear): the default grid is
    the first input's; the feature comes from the UTM 32 input within half a pixel."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    truth = _feature_scene()
    hidden = cloudy(truth, slice(15, 40), slice(15, 40))
    first = write_tif(tmp_path / "a.tif", hidden, date=dt.date(2021, 5, 1))
    with rasterio.open(first) as ds:
        transform, width, height = calculate_default_transform(
            ds.crs, "EPSG:32632", ds.width, ds.height, *ds.bounds, resolution=10.0
        )
        bounds_a, grid_a = ds.bounds, ds.transform
    moved = np.zeros((4, height, width), np.uint16)
    reproject(
        truth,
        moved,
        src_transform=grid_a,
        src_crs="EPSG:32633",
        dst_transform=transform,
        dst_crs="EPSG:32632",
        resampling=Resampling.bilinear,
        src_nodata=0,
        dst_nodata=0,
    )
    second = write_tif(
        tmp_path / "b.tif", moved, crs="EPSG:32632", transform=transform, date=dt.date(2021, 5, 9)
    )
    out = tmp_path / "c.tif"
    _run([second, first], out)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633
        col, row = ~ds.transform * (bounds_a.left, bounds_a.top)
        result = ds.read()
    r0, c0 = round(row), round(col)
    window = result[:, r0 : r0 + truth.shape[1], c0 : c0 + truth.shape[2]]
    offset = _centroid(window) - _centroid(truth)
    assert np.abs(offset).max() <= 0.5, offset
    info = _info(out)[1, r0 + 27, c0 + 27]
    assert info == dt.date(2021, 5, 9).timetuple().tm_yday


def test_input_damaged_inside_is_left_out_where_unreadable(
    series: list[Path], tmp_path: Path
) -> None:
    """A header that opens but tiles that cannot be read (a tiled GeoTIFF written by
    CreateCopy, header first, its last tiles cut off): left out of the
    windows it cannot be read in, reported; the others go on."""
    from rasterio.shutil import copy

    whole = write_tif(tmp_path / "whole.tif", clear_surface(8), date=dt.date(2021, 8, 1))
    damaged = tmp_path / "damaged.tif"
    copy(whole, damaged, driver="GTiff", tiled=True, blockxsize=16, blockysize=16)
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size * 17 // 20)
    out = tmp_path / "c.tif"
    summary = _run([*series, damaged], out).summary_data
    entries = {Path(e["path"]).name: e for e in summary["inputs"]}
    assert 0 < entries["damaged.tif"]["failed_windows"] < summary["windows"]
    assert "damaged.tif" in entries["damaged.tif"]["error"]
    assert all(e["failed_windows"] == 0 for n, e in entries.items() if n != "damaged.tif")
    assert entries["damaged.tif"]["valid_pixels"] > 0  # the windows it could be read in


def test_ranked_merge_takes_each_pixel_from_the_best_ranked_clear_image(
    series: list[Path], tmp_path: Path
) -> None:
    """The SEN12MS paper's merge: images ranked by their share of poor pixels (fewest
    first), each pixel from the first image in that order where it is clear."""
    out = tmp_path / "ranked.tif"
    summary = _run(series, out, method="ranked", block=16).summary_data
    stack = _stack(series)
    clear = stack[:, 0] < CLEAR_BLUE_DN
    poor_share = 1 - clear.reshape(len(series), -1).mean(axis=1)
    order = sorted(range(len(series)), key=lambda k: (poor_share[k], k))
    assert [e["rank"] for e in summary["inputs"]] == [order.index(k) for k in range(len(series))]
    expected = np.zeros_like(stack[0])
    filled = np.zeros(clear.shape[1:], bool)
    for k in order:
        take = clear[k] & ~filled
        expected[:, take] = stack[k][:, take]
        filled |= take
    assert np.array_equal(_read(out), expected)
    # not the best pixel: a worse-ranked image with higher quality is not taken
    best = tmp_path / "best.tif"
    _run(series, best, method="best")
    assert not np.array_equal(_read(best), expected)
