"""Time-series masks: the array-level refinement on synthetic stacks, and predict --series on
the SEN12MS-CR-TS fixture (tests/data/sen12mscr-ts/make.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from s2clouds.bands import L1C_BANDS
from s2clouds.cli.main import cli, main
from s2clouds.errors import BandError, CRSMismatchError
from s2clouds.inference.series import SERIES_SUMMARY, date_days, predict_series
from s2clouds.models.series import pooled_median, refine_series

T, SIZE = 8, 64
#: vegetation in L1C band order B01 ... B12
VEGETATION = (0.12, 0.08, 0.07, 0.05, 0.10, 0.20, 0.25, 0.30, 0.31, 0.10, 0.003, 0.20, 0.10)
B = {band: i for i, band in enumerate(L1C_BANDS)}
PATCH = (slice(20, 36), slice(20, 36))


def stack(seed: int = 0) -> np.ndarray:
    """(T, 13, SIZE, SIZE) float32 vegetation with 1 % texture and date-to-date noise."""
    rng = np.random.default_rng(seed)
    base = np.asarray(VEGETATION, np.float32)[:, None, None] * (
        1 + 0.01 * rng.standard_normal((13, SIZE, SIZE))
    )
    noise = 1 + 0.003 * rng.standard_normal((T, 13, SIZE, SIZE))
    return (base[None] * noise).astype(np.float32)


def probs(p_cloud: float = 0.02, p_shadow: float = 0.02) -> np.ndarray:
    """(T, 4, SIZE, SIZE) single-date probabilities: thick cloud and shadow as given."""
    out = np.zeros((T, 4, SIZE, SIZE), np.float32)
    out[:, 1], out[:, 3] = p_cloud, p_shadow
    out[:, 0] = 1 - p_cloud - p_shadow
    return out


def mask(p: np.ndarray) -> np.ndarray:
    return np.argmax(p, axis=-3)


def test_pooled_median_ignores_unused_and_nan() -> None:
    values = np.array([1, 5, 3, np.nan, 100], np.float32)[:, None, None]
    use = np.array([1, 1, 1, 1, 0], bool)[:, None, None]
    median, count = pooled_median(values, use)
    assert median[0, 0] == pytest.approx(3.0) and count[0, 0] == 3


def test_bright_surface_on_every_date_stays_clear() -> None:
    x = stack()
    x[:, :, PATCH[0], PATCH[1]] = 0.42  # bright flat ground (salt flat) on every date
    x[:, B["B10"], PATCH[0], PATCH[1]] = 0.004
    p = probs()
    p[:, 1, PATCH[0], PATCH[1]], p[:, 0, PATCH[0], PATCH[1]] = 0.85, 0.13  # called cloud
    out = refine_series(x, p, L1C_BANDS).probs
    assert np.mean(mask(out)[:, PATCH[0], PATCH[1]] == 0) > 0.99
    assert np.mean(mask(out) == 0) > 0.99


def test_transient_flat_rise_becomes_cloud() -> None:
    x, p = stack(), probs()  # the single-date model missed it
    x[3, :, PATCH[0], PATCH[1]] += 0.3
    out = refine_series(x, p, L1C_BANDS).probs
    m = mask(out)
    assert np.mean(np.isin(m[3][PATCH], (1, 2))) > 0.95
    assert np.mean(m[np.arange(T) != 3] == 0) > 0.99  # the other dates stay clear


def test_snow_does_not_become_cloud() -> None:
    x, p = stack(), probs()
    rows, cols = PATCH
    x[3, B["B01"] : B["B04"] + 1, rows, cols] += 0.45  # visible up
    x[3, B["B11"], rows, cols], x[3, B["B12"], rows, cols] = 0.06, 0.04  # SWIR down
    out = refine_series(x, p, L1C_BANDS).probs
    assert np.mean(mask(out)[3][PATCH] == 0) > 0.99


def _cloud_and_dark(dark_rows: slice) -> tuple[np.ndarray, np.ndarray]:
    x, p = stack(), probs(p_shadow=0.3)
    x[3, :, 5:15, 20:36] = 0.5  # a thick cloud
    x[3, B["B10"], 5:15, 20:36] = 0.03
    p[3, 1, 5:15, 20:36], p[3, 0, 5:15, 20:36] = 0.9, 0.08
    x[3, :, dark_rows, 20:36] *= 0.4  # a dark patch
    p[3, 3, dark_rows, 20:36], p[3, 0, dark_rows, 20:36] = 0.45, 0.53
    return x, p


def test_dark_patch_down_sun_of_cloud_becomes_shadow() -> None:
    x, p = _cloud_and_dark(slice(30, 40))  # sun in the north: shadows fall down the rows
    sun = [(45.0, 0.0)] * T
    out = refine_series(x, p, L1C_BANDS, sun=sun).probs
    assert np.mean(mask(out)[3, 31:39, 21:35] == 3) > 0.9
    assert out[3, 3, 31:39, 21:35].mean() > p[3, 3, 31:39, 21:35].mean()


def test_dark_patch_without_cloud_up_sun_is_not_shadow() -> None:
    x, p = _cloud_and_dark(slice(30, 40))
    sun = [(45.0, 180.0)] * T  # sun in the south: the cloud's shadow falls up the rows
    out = refine_series(x, p, L1C_BANDS, sun=sun).probs
    assert np.mean(mask(out)[3, 31:39, 21:35] == 3) < 0.05


def test_single_date_keeps_single_date_probabilities() -> None:
    x, p = stack()[:1], probs()[:1]
    result = refine_series(x, p, L1C_BANDS)
    np.testing.assert_array_equal(result.probs, p)
    assert not result.refined.any()
    rgbn = refine_series(x[:, [1, 2, 3, 7]], p, ("B02", "B03", "B04", "B08"))  # no SWIR: fine
    np.testing.assert_array_equal(rgbn.probs, p)


def test_series_needs_swir_and_matching_shapes() -> None:
    x = stack()
    with pytest.raises(BandError, match="B11"):
        refine_series(x[:, :4], probs(), ("B02", "B03", "B04", "B08"))
    with pytest.raises(BandError, match=r"\(T, 4, H, W\)"):
        refine_series(x, probs()[:3], L1C_BANDS)


def test_dates_from_names() -> None:
    from s2clouds.io.scenes import read_scene

    scene = read_scene(np.zeros((1, 4, 4), np.float32) + 0.1, bands=("B02",))
    assert date_days([scene] * 2) is None
    named = [
        replace(scene, product_id=name)
        for name in ("S2A_20180106_T32", "2018-01-21", "x_20181399_y_2018-02-05")
    ]
    assert date_days(named) == [0.0, 15.0, 30.0]  # an impossible date is skipped
    assert date_days([*named, scene]) is None  # every date must have one


# ------------------------------------------------------------------------- files and CLI
@pytest.fixture
def series_folder(tmp_path: Path, maker) -> tuple[Path, dict]:
    module = maker("sen12mscr-ts")
    info = module.write(tmp_path / "ts")
    return tmp_path / "ts" / module.ROI, info


def test_single_input_matches_single_date_predict(series_folder, tmp_path: Path) -> None:
    from s2clouds.inference.predict import predict

    folder, info = series_folder
    path = folder / f"{info['dates'][info['cloudy']]}.tif"
    single = predict(path, tmp_path / "single.tif")
    result = predict_series([str(path)], tmp_path / "series")
    with rasterio.open(single.output) as a, rasterio.open(result.dates[0].output) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_cli_series_writes_a_mask_per_date(series_folder, tmp_path: Path) -> None:
    folder, info = series_folder
    out = tmp_path / "masks"
    result = CliRunner().invoke(
        cli, ["predict", "--series", str(folder / "*.tif"), "-o", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    dates = info["dates"]
    assert sorted(p.name for p in out.glob("*_cloudmask.tif")) == [
        f"{d}_cloudmask.tif" for d in dates
    ]
    summary = json.loads((out / SERIES_SUMMARY).read_text())
    assert summary["dates_known"] and len(summary["dates"]) == len(dates)
    cloudy = summary["dates"][info["cloudy"]]
    assert cloudy["series"]["cloud_percent"] > 10
    truth = info["truth"]
    with rasterio.open(out / f"{dates[info['cloudy']]}_cloudmask.tif") as ds:
        m = ds.read(1)
    assert np.mean(np.isin(m[truth == 1], (1, 2))) > 0.9
    for i, record in enumerate(summary["dates"]):
        if i != info["cloudy"]:
            assert record["series"]["cloud_percent"] < 1


def _tif(path: Path, bands: tuple[str, ...], x0: float, value: float = 0.1) -> Path:
    profile = {
        "driver": "GTiff",
        "count": len(bands),
        "height": 32,
        "width": 32,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": Affine(10.0, 0.0, x0, 0.0, -10.0, 5_000_000.0),
    }
    data = (
        (np.asarray(VEGETATION, np.float32)[[L1C_BANDS.index(b) for b in bands]] * 10000)[
            :, None, None
        ]
        * np.ones((1, 32, 32), np.float32)
        * value
        / 0.1
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.uint16))
        for i, band in enumerate(bands, start=1):
            dst.set_band_description(i, band)
    return path


def test_non_overlapping_dates_are_refused(tmp_path: Path) -> None:
    a = _tif(tmp_path / "2018-01-01.tif", L1C_BANDS, 500_000.0)
    b = _tif(tmp_path / "2018-02-01.tif", L1C_BANDS, 510_000.0)
    with pytest.raises(CRSMismatchError, match="does not overlap"):
        predict_series([str(a), str(b)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_shifted_dates_are_placed_on_the_first_grid(tmp_path: Path) -> None:
    a = _tif(tmp_path / "2018-01-01.tif", L1C_BANDS, 500_000.0)
    b = _tif(tmp_path / "2018-02-01.tif", L1C_BANDS, 500_100.0)  # 10 px east
    result = predict_series([str(a), str(b)], tmp_path / "out")
    with rasterio.open(result.dates[1].output) as ds:
        m = ds.read(1)
        assert ds.transform.c == 500_000.0
    assert (m[:, :10] == 255).all() and (m[:, 10:] != 255).all()


def test_band_mismatch_between_dates_is_refused(tmp_path: Path) -> None:
    a = _tif(tmp_path / "2018-01-01.tif", L1C_BANDS, 500_000.0)
    no_swir = tuple(b for b in L1C_BANDS if b not in ("B11", "B12"))
    b = _tif(tmp_path / "2018-02-01.tif", no_swir, 500_000.0)
    with pytest.raises(BandError, match=r"date 2 \(2018-02-01\) lacks band\(s\) B11"):
        predict_series([str(a), str(b)], tmp_path / "out")


def test_cli_reports_series_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _tif(tmp_path / "2018-01-01.tif", L1C_BANDS, 500_000.0)
    b = _tif(tmp_path / "2018-02-01.tif", L1C_BANDS, 590_000.0)
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--series", str(a), str(b), "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "does not overlap the first date" in capsys.readouterr().err


def test_geographic_grid_resolution_in_metres() -> None:
    """SEN12MS-CR-TS files are in EPSG:4326: models must see metres, not degrees (a pixel
    model given 9e-5 "m" asked for a halo of millions of pixels and never finished)."""
    from rasterio.crs import CRS

    from s2clouds.io.grid import Grid

    grid = Grid(CRS.from_epsg(4326), Affine(8.983e-05, 0, 12.7, 0, -8.983e-05, 42.07), 256, 256)
    assert grid.metres_per_pixel == pytest.approx(10.0 * np.cos(np.radians(42.06)) ** 0.5, rel=0.01)
    utm = Grid(CRS.from_epsg(32633), Affine(10.0, 0, 5e5, 0, -10.0, 5e6), 8, 8)
    assert utm.metres_per_pixel == 10.0


def test_an_interrupted_series_resumes_from_its_saved_windows(
    series_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A series that fails part-way keeps its finished windows beside the masks (and writes
    no mask); the re-run computes only the others and writes the same masks as one run."""
    import s2clouds.inference.series as series_module
    from s2clouds.inference.distributed import ClusterOptions

    serial = ClusterOptions(workers=0)  # the patched task runs in this process
    folder, info = series_folder
    paths = sorted(str(p) for p in folder.glob("*.tif"))
    monkeypatch.setattr(series_module, "SERIES_BLOCK", 32)  # several windows per date
    whole = predict_series(paths, tmp_path / "whole", cluster=serial)
    computed: list[object] = []
    real = series_module.series_window

    def failing(plan, window):  # type: ignore[no-untyped-def]
        computed.append(window)
        if len(computed) == 3:
            raise OSError("the disk went away")
        return real(plan, window)

    monkeypatch.setattr(series_module, "series_window", failing)
    out = tmp_path / "resumed"
    with pytest.raises(OSError):
        predict_series(paths, out, cluster=serial)
    assert not list(out.glob("*_cloudmask.tif"))
    saved = list(out.glob(".series.parts-*/*.npz"))
    assert len(saved) == 2
    n_windows = len(computed)
    counting: list[object] = []
    monkeypatch.setattr(
        series_module, "series_window", lambda plan, w: counting.append(w) or real(plan, w)
    )
    resumed = predict_series(paths, out, cluster=serial)
    with rasterio.open(whole.dates[0].output) as ds:
        total = -(-ds.height // 32) * -(-ds.width // 32)
    assert n_windows == 3 and len(counting) == total - 2
    assert not list(out.glob(".series.parts-*"))  # removed once the masks are complete
    for a, b in zip(whole.dates, resumed.dates, strict=True):
        with rasterio.open(a.output) as x, rasterio.open(b.output) as y:
            np.testing.assert_array_equal(x.read(1), y.read(1))
    assert [d.series for d in whole.dates] == [d.series for d in resumed.dates]
    assert [d.single for d in whole.dates] == [d.single for d in resumed.dates]

    # interrupted after its last window: the re-run computes nothing and writes the masks
    def fail_on_close(self, seconds):  # type: ignore[no-untyped-def]
        raise OSError("the disk went away at the end")

    again = tmp_path / "again"
    monkeypatch.setattr(series_module.SeriesOutput, "close", fail_on_close)
    with pytest.raises(OSError):
        predict_series(paths, again, cluster=serial)
    monkeypatch.undo()
    monkeypatch.setattr(series_module, "SERIES_BLOCK", 32)
    counting.clear()
    monkeypatch.setattr(
        series_module, "series_window", lambda plan, w: counting.append(w) or real(plan, w)
    )
    last = predict_series(paths, again, cluster=serial)
    assert counting == [] and not list(again.glob(".series.parts-*"))
    for a, b in zip(whole.dates, last.dates, strict=True):
        with rasterio.open(a.output) as x, rasterio.open(b.output) as y:
            np.testing.assert_array_equal(x.read(1), y.read(1))
