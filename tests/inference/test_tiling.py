from typing import Any

import numpy as np
import pytest

from s2clouds.inference.options import RunOptions
from s2clouds.inference.window import predict_array, predict_window
from s2clouds.io.scenes import scene_from_array
from s2clouds.io.tiling import blend_tiles, feather_weights, tile_grid, tile_starts
from s2clouds.models.base import CloudModel, ModelContext


def test_tiles_cover_and_clamp() -> None:
    assert tile_starts(1000, 256, 32) == [0, 224, 448, 672, 744]
    assert tile_starts(100, 256, 32) == [0]
    windows = tile_grid(300, 520, 256, 32)
    covered = np.zeros((300, 520), int)
    for w in windows:
        assert w.row + w.height <= 300 and w.col + w.width <= 520
        covered[w.slices] += 1
    assert covered.min() >= 1
    w = feather_weights(64, 64, 16)
    assert w.min() > 0 and w[32, 32] == 1.0 and w[0, 0] < w[8, 8]


class PixelModel(CloudModel):
    """Output depends only on each pixel, so tiling must not change anything."""

    name = "pixel"
    bands = ("B02", "B03", "B04", "B08")
    halo = 0
    tile_size = 64

    def predict_proba(self, image: np.ndarray, context: dict[str, Any]) -> np.ndarray:
        logits = np.stack([image[0], image[1] * 2, image[2] ** 2, np.sin(image[3] * 7)])
        e = np.exp(logits - logits.max(axis=0))
        return (e / e.sum(axis=0)).astype(np.float32)


def test_tiled_equals_untiled_no_seams() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((4, 200, 170), dtype=np.float32)
    model = PixelModel()
    whole = model.predict_proba(image, ModelContext())
    tiled = blend_tiles(
        image, lambda x: model.predict_proba(x, ModelContext()), 4, tile=64, overlap=16
    )
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    np.testing.assert_allclose(
        predict_array(model, image, ModelContext(), overlap=16), whole, atol=1e-6
    )


@pytest.mark.parametrize("block", [37, 64, 500])
def test_blocks_reassemble_the_scene(block: int) -> None:
    rng = np.random.default_rng(2)
    image = rng.random((4, 150, 130), dtype=np.float32)
    image[:, :3] = np.nan  # no-data rows
    scene = scene_from_array(image, PixelModel.bands)
    out = np.zeros((150, 130), np.uint8)
    for window in scene.grid.windows(block):
        mask, probs = predict_window(scene, PixelModel(), window, RunOptions(block=block))
        out[window.slices] = mask
        valid = mask != 255
        np.testing.assert_allclose(probs.sum(axis=0)[valid], 1.0, atol=1e-5)
    expected = np.argmax(PixelModel().predict_proba(np.nan_to_num(image), ModelContext()), axis=0)
    np.testing.assert_array_equal(out[3:], expected[3:])
    assert np.all(out[:3] == 255)
