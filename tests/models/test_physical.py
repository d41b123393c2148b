import numpy as np
import pytest

from s2clouds.errors import BandError
from s2clouds.models.base import ModelContext
from s2clouds.models.physical import PhysicalModel
from s2clouds.models.registry import get_model, list_models


@pytest.mark.parametrize(
    "bands",
    [["B02", "B03", "B04", "B08"], ["B01", "B02", "B03", "B04", "B08", "B10", "B11"]],
)
def test_cloud_block_found_and_probabilities_sum_to_one(bands: list[str], maker) -> None:
    image = maker("geotiff").reflectance_stack(bands, 128)
    model = PhysicalModel.for_bands(bands)
    assert model.bands[:4] == ("B02", "B03", "B04", "B08")
    probs = model.predict_proba(
        image, ModelContext(resolution=10, sun_zenith=40.0, sun_azimuth=135.0)
    )
    assert probs.shape == (4, 128, 128)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    mask = probs.argmax(axis=0)
    assert (mask[40:56, 40:56] == 1).all()  # the bright block (rows/cols 32-64) is cloud
    assert (mask[100:, :20] == 0).all()  # far vegetation is clear
    assert (probs[2] == 0).all()  # thin cloud is never claimed


def test_shadow_falls_away_from_the_sun(maker) -> None:
    image = maker("geotiff").reflectance_stack(["B02", "B03", "B04", "B08"], 128)
    # darken the place where a shadow should be for a sun in the south-east (azimuth 135):
    # shadows fall to the north-west, i.e. up and left of the cloud block (rows/cols 32-64)
    image[:, 5:30, 5:30] *= 0.3
    image[:, 70:95, 70:95] *= 0.3  # equally dark, but on the sunny side: not shadow
    model = PhysicalModel.for_bands(["B02", "B03", "B04", "B08"])
    mask = model.predict_proba(
        image, ModelContext(resolution=10, sun_zenith=40, sun_azimuth=135)
    ).argmax(0)
    assert (mask[15:25, 15:25] == 3).mean() > 0.8
    assert (mask[75:90, 75:90] == 3).mean() == 0.0
    estimated = model.estimate_azimuth(mask == 1, image[3] < 0.12, 10.0)
    assert 90 <= estimated <= 180


def test_band_requirements() -> None:
    with pytest.raises(BandError, match="needs at least"):
        PhysicalModel.for_bands(["B02", "B03", "B04"])
    with pytest.raises(BandError, match="expects 4 bands"):
        PhysicalModel().predict_proba(np.zeros((3, 4, 4), np.float32), ModelContext())
    assert [m.name for m in list_models()][0] == "physical"
    assert get_model("physical", ["B02", "B03", "B04", "B08", "B11"]).bands[-1] == "B11"


def test_unknown_sun_angles_are_estimated_once_per_scene(maker, tmp_path) -> None:
    """Without metadata the engine estimates the azimuth once, from an overview of the whole
    scene, so that small blocks (which may hold a cloud but not its shadow) agree."""
    from s2clouds.inference.options import RunOptions
    from s2clouds.inference.window import prepare_scene
    from s2clouds.io.scenes import read_scene

    bands = ["B02", "B03", "B04", "B08"]
    image = maker("geotiff").reflectance_stack(bands, 128)
    image[:, 5:30, 5:30] *= 0.3  # shadow north-west of the cloud block: sun in the south-east
    scene = read_scene(image, bands=bands)
    assert scene.angles is None
    overview, resolution = scene.overview(max_size=64)
    assert overview.shape == (4, 64, 64) and resolution == 20.0
    prepared, model = prepare_scene(scene, RunOptions(model="physical"))
    assert prepared.angles is not None and prepared.angles.source == "estimated from the image"
    assert 90 <= prepared.angles.sun_azimuth <= 180
    kept, _ = prepare_scene(prepared, RunOptions(model="physical"))
    assert kept.angles == prepared.angles
    learned, _ = prepare_scene(scene, RunOptions(model="s2clouds-tiny-rgbn"))
    assert learned.angles is None  # models that do not need the sun are not delayed


def test_overview_of_a_raster_scene_is_read_coarse(maker, tmp_path) -> None:
    from s2clouds.io.scenes import read_scene

    folder = maker("geotiff").write_band_folder(tmp_path / "s", ["B02", "B03", "B04", "B08"], 64)
    scene = read_scene(folder)
    overview, resolution = scene.overview(max_size=16)
    whole = scene.read()
    assert overview.shape == (4, 16, 16) and resolution == 40.0
    np.testing.assert_allclose(overview.mean(), whole.mean(), rtol=0.05)
