"""Annotation from scribbles: library and ``s2clouds annotate`` on a GeoTIFF band folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

pytest.importorskip("lightgbm")

from s2clouds.cli.main import cli  # noqa: E402
from s2clouds.errors import CRSMismatchError, DatasetError, OutputError  # noqa: E402
from s2clouds.io.scenes import read_scene  # noqa: E402
from s2clouds.train.annotate import annotate, read_scribbles, scribbled_blocks  # noqa: E402

RGBN = ["B02", "B03", "B04", "B08"]
SIZE = 64
Q = SIZE // 4  # the fixture's cloud block is rows/cols [Q, 2Q)


def write_scribbles(scene: Path, path: Path, strokes: dict[int, tuple[slice, slice]]) -> Path:
    """A uint8 raster on the grid of ``scene/B02.tif``: ``strokes`` class -> (rows, cols)."""
    with rasterio.open(scene / "B02.tif") as ds:
        profile = ds.profile | {"dtype": "uint8", "nodata": 255, "count": 1}
    values = np.full((SIZE, SIZE), 255, np.uint8)
    for value, where in strokes.items():
        values[where] = value
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(values, 1)
    return path


@pytest.fixture
def scene(maker: Callable[[str], ModuleType], tmp_path: Path) -> Path:
    folder: Path = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=SIZE)
    return folder


STROKES = {
    0: (slice(50, 52), slice(5, 60)),  # two rows across the vegetation
    1: (slice(Q + 3, Q + 4), slice(Q + 2, 2 * Q - 2)),  # one row inside the cloud block
}


def test_a_few_strokes_mask_the_whole_scene_and_the_model_is_kept(
    scene: Path, tmp_path: Path
) -> None:
    scribbles = write_scribbles(scene, tmp_path / "scribbles.tif", STROKES)
    out, model = tmp_path / "mask.tif", tmp_path / "mine.lgbm"
    result = CliRunner().invoke(
        cli,
        ["annotate", str(scene), "--scribbles", str(scribbles), "-o", str(out)]
        + ["--save-model", str(model), "--rounds", "20", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "clear 110, thick cloud 12" in result.output and model.is_file()
    with rasterio.open(out) as ds:
        mask = ds.read(1)
    truth = np.zeros((SIZE, SIZE), np.uint8)
    truth[Q : 2 * Q, Q : 2 * Q] = 1
    assert np.mean(np.isin(mask, (1, 2)) == (truth == 1)) > 0.97
    again = CliRunner().invoke(
        cli, ["predict", str(scene), "-o", str(tmp_path / "m2.tif"), "--model", str(model)]
    )
    assert again.exit_code == 0, again.output


def test_scribbles_off_the_scene_grid_or_empty_are_refused(scene: Path, tmp_path: Path) -> None:
    scribbles = write_scribbles(scene, tmp_path / "s.tif", STROKES)
    with rasterio.open(scribbles, "r+") as ds:
        ds.transform = ds.transform @ Affine.translation(3, 0)
    with pytest.raises(CRSMismatchError, match="not on the scene's grid"):
        annotate(scene, scribbles, tmp_path / "m.tif")
    empty = write_scribbles(scene, tmp_path / "e.tif", {})
    with pytest.raises(DatasetError, match="label some pixels"):
        annotate(scene, empty, tmp_path / "m.tif")
    assert not (tmp_path / "m.tif").exists()


def test_features_are_computed_only_for_blocks_with_scribbles() -> None:
    scribbles = np.full((100, 80), 255, np.uint8)
    scribbles[40, 30:35] = 0
    scribbles[90, 75] = 1
    blocks = scribbled_blocks(scribbles, 32)
    assert [(w.row, w.col, w.height, w.width) for w in blocks] == [
        (32, 0, 32, 32),
        (32, 32, 32, 32),
        (64, 64, 32, 16),
    ]


def test_nodata_scribbles_and_writing_over_them_are_handled(scene: Path, tmp_path: Path) -> None:
    """Unpainted pixels stored as the raster's nodata (0 here, which is 'clear' in the
    canonical scheme) stay unlabelled; the scribbles are never overwritten."""
    with rasterio.open(scene / "B02.tif") as ds:
        profile = ds.profile | {"dtype": "uint8", "nodata": 0, "count": 1}
    values = np.zeros((SIZE, SIZE), np.uint8)
    values[Q + 3, Q + 2 : 2 * Q - 2] = 1  # cloud strokes only; 0 = not painted
    path = tmp_path / "nodata_scribbles.tif"
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(values, 1)
    labels = read_scribbles(path, read_scene(scene).grid, "canonical")
    assert np.sum(labels != 255) == np.sum(values == 1)
    with pytest.raises(OutputError, match="is the input file"):
        annotate(scene, path, path)
