"""Results that were silently wrong: output grids that dropped the last partial pixel,
metres taken as degrees, inputs that are not Sentinel-2 (0.5 m pixels, 8-bit exports), a
composite threshold of NaN, a composite written under a ``.json`` name, and masks that
changed on a few pixels with the block size or the cluster. Each now gives the right result
or one line with exit 2 and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2clouds.cli.main import main

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


def write_scene(
    path: Path,
    height: int,
    width: int,
    *,
    pixel: float = 10.0,
    crs: str = "EPSG:32633",
    origin: tuple[float, float] = (500_000.0, 5_000_000.0),
    dtype: str = "uint16",
) -> Path:
    """A 4-band (B02, B03, B04, B08) GeoTIFF of vegetation-like values, ``height`` x
    ``width`` px of ``pixel`` CRS units."""
    rng = np.random.default_rng(height * 1000 + width)
    base = np.array([500, 800, 600, 3000], np.float64)[:, None, None]
    data = base + rng.integers(0, 300, size=(4, height, width))
    if np.dtype(dtype).itemsize == 1:
        data = data / 40
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 4,
        "dtype": dtype,
        "crs": crs,
        "transform": Affine(pixel, 0, origin[0], 0, -pixel, origin[1]),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(dtype))
        for i, band in enumerate(RGBN, start=1):
            ds.set_band_description(i, band)
    return path


def predicted(tmp_path: Path, source: Path, *extra: str) -> rasterio.DatasetReader:
    out = tmp_path / "mask.tif"
    main(["predict", str(source), "-o", str(out), "--quiet", "--workers", "0", *extra])
    return rasterio.open(out)


@pytest.mark.parametrize(
    ("height", "width", "resolution", "expected"),
    [(5, 5, 20, (3, 3)), (509, 511, 60, (85, 86)), (7, 13, 60, (2, 3)), (600, 600, 60, (100, 100))],
)
def test_output_grids_cover_the_whole_input(
    tmp_path: Path, height: int, width: int, resolution: int, expected: tuple[int, int]
) -> None:
    """A coarser output grid rounds up: its last row and column cover the input's last
    fine pixels (5 px at 10 m are 3 px at 20 m, not 2; 511 px at 60 m are 86, not 85)."""
    scene = write_scene(tmp_path / "scene.tif", height, width)
    with predicted(tmp_path, scene, "--resolution", str(resolution)) as ds:
        assert ds.shape == expected
        assert ds.res == (resolution, resolution)
        assert ds.transform.c == 500_000.0 and ds.transform.f == 5_000_000.0
        assert (ds.read(1) != 255).all()  # every coarse pixel holds some input pixel


@pytest.mark.parametrize("resolution", [10, 20])
def test_resolution_is_metres_on_a_geographic_input(tmp_path: Path, resolution: int) -> None:
    """An EPSG:4326 export with pixels of about 10 m: ``--resolution 10`` keeps about its
    size (it gave 1 x 1 px, 10 degrees), ``--resolution 20`` about halves it."""
    degrees = 10 / 111_320  # about 10 m on the equator
    scene = write_scene(
        tmp_path / "scene.tif", 96, 96, pixel=degrees, crs="EPSG:4326", origin=(20.0, 0.5)
    )
    with predicted(tmp_path, scene, "--resolution", str(resolution)) as ds:
        expected = 96 * 10 / resolution
        assert ds.crs.to_epsg() == 4326
        assert abs(ds.height - expected) <= 2 and abs(ds.width - expected) <= 2
        assert ds.res[0] == pytest.approx(degrees * resolution / 10, rel=0.02)


@pytest.mark.parametrize(("pixel", "words"), [(0.5, "0.5 m"), (1000.0, "1e+03 m"), (2.0, "2 m")])
def test_pixels_far_from_sentinel2_are_refused(
    tmp_path: Path, refuse: Refuse, frozen: Frozen, pixel: float, words: str
) -> None:
    scene = write_scene(tmp_path / "scene.tif", 64, 64, pixel=pixel)
    check = frozen(tmp_path)
    err = refuse(["predict", str(scene), "-o", str(tmp_path / "mask.tif"), "--quiet"])
    assert f"pixels of {words}" in err and "5 to 120 m" in err
    check()


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_8_bit_inputs_are_not_taken_for_sentinel2_dn(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, dtype: str
) -> None:
    scene = write_scene(tmp_path / "scene.tif", 64, 64, dtype=dtype)
    folder = tmp_path / "bands"
    folder.mkdir()
    with rasterio.open(scene) as ds:
        for i, band in enumerate(RGBN, start=1):
            profile = ds.profile | {"count": 1}
            with rasterio.open(folder / f"{band}.tif", "w", **profile) as out:
                out.write(ds.read(i), 1)
    check = frozen(tmp_path)
    for source in (scene, folder):
        err = refuse(["predict", str(source), "-o", str(tmp_path / "mask.tif"), "--quiet"])
        assert "8-bit" in err and dtype in err and "--scale" in err
    check()


def composite_args(inputs: list[Path], out: Path, *extra: str) -> list[str]:
    return [
        "composite",
        *map(str, inputs),
        "-o",
        str(out),
        "--score",
        "sen12ms",
        "--workers",
        "0",
        "--quiet",
        *extra,
    ]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--min-quality", "nan"),
        ("--min-quality", "inf"),
        ("--distance-cap", "inf"),
        ("--distance-cap", "nan"),
        ("--distance-cap", "-inf"),
    ],
)
def test_composite_thresholds_must_be_finite(
    tmp_path: Path, refuse: Refuse, frozen: Frozen, option: str, value: str
) -> None:
    scene = write_scene(tmp_path / "a.tif", 32, 32)
    check = frozen(tmp_path)
    err = refuse(composite_args([scene], tmp_path / "c.tif", option, value))
    assert option in err and value in err
    check()


def test_composite_options_refuse_nan_in_the_library() -> None:
    from s2clouds.errors import OptionError
    from s2clouds.mosaic.composite import CompositeOptions

    for kwargs in (
        {"min_quality": float("nan")},
        {"distance_cap": float("inf")},
        {"distance_cap": float("nan")},
        {"min_quality": 1.5},
    ):
        with pytest.raises(OptionError):
            CompositeOptions(**kwargs)


@pytest.mark.parametrize("name", ["comp.json", "comp.png", "comp", "comp.info"])
def test_composite_output_must_be_a_tif(
    tmp_path: Path, refuse: Refuse, frozen: Frozen, name: str
) -> None:
    scene = write_scene(tmp_path / "a.tif", 32, 32)
    check = frozen(tmp_path)
    err = refuse(composite_args([scene], tmp_path / name))
    assert "ending in .tif" in err
    check()


# ------------------------------------------------------------ identical for any block
def test_box_means_do_not_depend_on_the_window_origin() -> None:
    """scipy's uniform_filter keeps a running sum along each line (in double, so that a
    pixel's mean changed with where the array started only rarely, in its last bit); the box
    mean of a pixel is now a fixed-order sum of its own window: the same number in every
    window that holds its neighbourhood."""
    from s2clouds.models.pixel_features import local_mean, local_std

    rng = np.random.default_rng(3)
    image = rng.random((300, 300), dtype=np.float32) * np.float32(0.7)
    image[40:60, 100:130] = np.nan
    for size in (7, 31, 63):
        whole, part = local_mean(image, size), local_mean(image[17:, 101:], size)
        core = (slice(17 + size, 250), slice(101 + size, 250))
        np.testing.assert_array_equal(
            whole[core], part[core[0].start - 17 : 250 - 17, core[1].start - 101 : 250 - 101]
        )
        std_whole, std_part = local_std(image, size), local_std(image[17:, 101:], size)
        np.testing.assert_array_equal(
            std_whole[core],
            std_part[core[0].start - 17 : 250 - 17, core[1].start - 101 : 250 - 101],
        )


def test_interpolation_weights_depend_only_on_the_phase() -> None:
    """Cell and block interpolation weights computed from float32 positions lost bits as
    the position grew: the same pixel got another weight in another window."""
    from s2clouds.models.pixel import interpolate_cells
    from s2clouds.resample import upsample_bilinear

    rng = np.random.default_rng(5)
    cells = rng.random((4, 200, 200), dtype=np.float32)
    whole = interpolate_cells(cells, (600, 600), 3)
    part = interpolate_cells(cells[:, 33:, 40:], (600 - 99, 600 - 120), 3)
    np.testing.assert_array_equal(
        whole[:, 99 + 3 : 590, 120 + 3 : 590], part[:, 3 : 590 - 99, 3 : 590 - 120]
    )
    up_whole = upsample_bilinear(cells, 6, (1200, 1200))
    up_part = upsample_bilinear(cells[:, 50:, 70:], 6, (900, 780))
    np.testing.assert_array_equal(
        up_whole[:, 300 + 6 : 1190, 420 + 6 : 1190], up_part[:, 6 : 1190 - 300, 6 : 1190 - 420]
    )


@pytest.mark.parametrize("model", ["s2clouds-pixel-rgbn", "physical", "s2clouds-tiny-rgbn"])
def test_real_chip_probabilities_are_identical_for_any_block(real_data: Path, model: str) -> None:
    """The oncloudn chip (512 px, real Sentinel-2) in 64, 200 and 1024 px blocks: the float
    probabilities of every pixel are bit-identical (they differed by up to 4e-6 for the
    pixel model, enough to flip a pixel's class now and then)."""
    from s2clouds.inference.options import RunOptions
    from s2clouds.inference.window import predict_window, prepare_scene
    from s2clouds.io.scenes import read_scene
    from s2clouds.models.base import ModelContext

    chip = real_data / "oncloudn_chip1"
    if not chip.is_dir():
        pytest.skip(f"{chip} not present")
    scene = read_scene(chip)
    results = {}
    for block in (1024, 64, 200):
        run = RunOptions(model=model, block=block)
        prepared, built = prepare_scene(scene, run)
        context = ModelContext.of_scene(prepared)
        probs = np.zeros((4, *prepared.grid.shape), np.float32)
        for window in prepared.grid.windows(block):
            probs[(slice(None), *window.slices)] = predict_window(
                prepared, built, window, run, context
            )[1]
        results[block] = probs
    np.testing.assert_array_equal(results[64], results[1024])
    np.testing.assert_array_equal(results[200], results[1024])
