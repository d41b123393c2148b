"""The default model is chosen by the input's bands and level; the pixel models run at
their spec's resolution."""

from __future__ import annotations

import numpy as np
import pytest

from s2clouds.errors import BandError
from s2clouds.models.base import ModelContext
from s2clouds.models.registry import (
    AUTO_CHOICES,
    DEFAULT_MODEL,
    choose_model,
    get_model,
    get_model_info,
)

L1C13 = AUTO_CHOICES[0].bands
SWIR12 = tuple(b for b in L1C13 if b != "B10")


def test_choice_by_bands_and_level() -> None:
    assert DEFAULT_MODEL == "auto"
    assert choose_model(L1C13, "L1C").model == "s2clouds-pixel-l1c13"
    assert choose_model(L1C13, None).model == "s2clouds-pixel-l1c13"
    with pytest.warns(UserWarning, match="declared L2A but holds the cirrus band"):
        assert choose_model(L1C13, "L2A").model == "s2clouds-pixel-swir12"  # no B10 in L2A
    assert choose_model(SWIR12, "L1C").model == "s2clouds-pixel-swir12"
    assert choose_model(("B02", "B03", "B04", "B08", "B12"), "L2A").model == "s2clouds-pixel-rgbn"


@pytest.mark.parametrize(
    ("bands", "model"),
    [
        # the usual analysis-ready 10-band stack, and 11 bands (B01 kept, no B09 or B10)
        (
            ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
            "s2clouds-pixel-swir10",
        ),
        (
            ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
            "s2clouds-pixel-swir10",
        ),
        (("B02", "B03", "B04", "B08", "B11", "B12"), "s2clouds-pixel-swir6"),
        (("B02", "B03", "B04", "B05", "B08", "B11", "B12"), "s2clouds-pixel-swir6"),
        (("B02", "B03", "B04", "B08", "B11"), "s2clouds-pixel-rgbn"),
    ],
)
def test_stacks_with_swir_keep_their_swir_bands(bands: tuple[str, ...], model: str) -> None:
    for level in ("L1C", "L2A", None):
        assert choose_model(bands, level).model == model
    assert choose_model(("blue", "green", "red", "nir"), None).model == "s2clouds-pixel-rgbn"


def test_too_few_bands_lists_what_each_model_needs() -> None:
    with pytest.raises(BandError) as info:
        choose_model(("B02", "B03", "B04"))
    message = str(info.value)
    for choice in AUTO_CHOICES:
        assert choice.model in message
    assert "model=" in message


def test_every_choice_is_a_shipped_model_with_a_spec() -> None:
    for choice in AUTO_CHOICES:
        info = get_model_info(choice.model)
        assert set(info.bands) == set(choice.bands)
        assert "trained on" in info.description
    assert get_model(DEFAULT_MODEL, L1C13, "L1C").name == "s2clouds-pixel-l1c13"


def test_pixel_model_runs_coarse_and_returns_the_input_grid() -> None:
    model = get_model("s2clouds-pixel-rgbn", ("B02", "B03", "B04", "B08"))
    assert model.spec.resolution == 20.0
    assert model.internal_factor(ModelContext(resolution=10.0)) == 2
    assert model.internal_factor(ModelContext(resolution=30.0)) == 1
    assert model.internal_factor(ModelContext()) == 1
    reach = int(np.ceil(model.spec.shadow_reach_m / 10.0))  # a cloud beyond may shade
    assert model.required_halo(ModelContext(resolution=10.0)) >= 2 * model.halo + reach
    rng = np.random.default_rng(0)
    vegetation = np.array([0.05, 0.07, 0.04, 0.3], np.float32)[:, None, None]
    image = (vegetation * rng.uniform(0.9, 1.1, (4, 127, 121))).astype(np.float32)
    image[:, 10:50, 5:45] = 0.6  # a bright flat block: cloud
    image[:, 0, 0] = np.nan
    probs = model.predict_proba(image, ModelContext(resolution=10.0))
    assert probs.shape == (4, 127, 121)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-4)
    assert probs[0, 0, 0] == 1.0  # no data stays clear = 1
    assert probs[1:3, 20:40, 15:35].sum(axis=0).mean() > 0.5
    assert probs[0, 90:, 80:].mean() > 0.8
