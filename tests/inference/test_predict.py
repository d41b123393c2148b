"""The one predict driver: results do not depend on memory knobs (block size, engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.errors import BandError
from s2clouds.inference.options import OutputOptions, PredictOptions, ReadOptions, RunOptions
from s2clouds.inference.predict import predict
from s2clouds.inference.window import expand_window
from s2clouds.io.grid import Window

#: the default (automatic) pixel model, the physical model and the shipped network
MODELS = ("auto", "physical", "s2clouds-tiny-rgbn")


def predicted(source: Path, output: Path, model: str, block: int) -> np.ndarray:
    """Mask (1, H, W) and probabilities (4, H, W) of ``source``, stacked (5, H, W) uint8."""
    run = RunOptions(model=model, block=block)
    options = PredictOptions(run=run, output=OutputOptions(probabilities=True), progress=False)
    result = predict(source, output, options)
    assert result.probabilities is not None
    with rasterio.open(output) as mask, rasterio.open(result.probabilities) as probs:
        return np.concatenate([mask.read(), probs.read()])


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_masks_do_not_depend_on_the_block(model: str, real_data: Path, tmp_path: Path) -> None:
    chip = real_data / "oncloudn_chip2"
    whole = predicted(chip, tmp_path / "whole.tif", model, 1024)  # one window
    for block in (64, 200):  # 200: windows that do not start on the models' grids
        blocked = predicted(chip, tmp_path / f"b{block}.tif", model, block)
        np.testing.assert_array_equal(blocked[0], whole[0], err_msg=str(block))  # the mask
        # probabilities in whole percent: running window sums start at the window edge, so
        # float32 rounding may tip a value across a half percent
        difference = np.abs(blocked[1:].astype(int) - whole[1:].astype(int))
        assert difference.max() <= 1 and np.mean(difference > 0) < 1e-4, block


def test_windows_start_on_the_model_grid() -> None:
    window = Window(200, 400, 200, 200)
    assert expand_window(window, 38, 1000, 1000, 4) == Window(160, 360, 278, 278)
    assert expand_window(window, 38, 1000, 1000) == Window(162, 362, 276, 276)
    assert expand_window(Window(0, 0, 64, 64), 75, 100, 100, 16) == Window(0, 0, 100, 100)


@pytest.mark.peers
def test_quicklook_uses_every_band_of_the_input(tmp_path: Path, maker) -> None:
    """s2cloudless reads no B03: the quicklook still draws true colour from the input."""
    pytest.importorskip("s2cloudless")
    from s2clouds.bands import L1C_BANDS

    source = maker("geotiff").write_multiband(tmp_path / "s.tif", list(L1C_BANDS))
    run = RunOptions(model="s2cloudless")
    quicklook = tmp_path / "q.png"
    options = PredictOptions(run=run, output=OutputOptions(quicklook=quicklook), progress=False)
    result = predict(source, tmp_path / "m.tif", options)
    assert result.quicklook == quicklook and quicklook.stat().st_size > 0


def test_a_quicklook_without_true_colour_is_refused_before_work(tmp_path: Path) -> None:
    image = np.full((4, 16, 16), 0.1, np.float32)
    options = PredictOptions(
        read=ReadOptions(bands=("B02", "B04", "B08", "B11")),
        run=RunOptions(model="physical"),
        output=OutputOptions(quicklook=tmp_path / "q.png"),
        progress=False,
    )
    with pytest.raises(BandError, match="quicklook"):
        predict(image, tmp_path / "m.tif", options)
    assert not (tmp_path / "m.tif").exists()
