from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from s2clouds.errors import ModelError
from s2clouds.io.scene import SunAngles
from s2clouds.io.scenes import read_scene
from s2clouds.models.base import ModelContext


def test_one_constructor_per_source_and_attribute_reading() -> None:
    image = np.full((4, 8, 8), 0.1, np.float32)
    scene = read_scene(image, bands=["B02", "B03", "B04", "B08"], pixel_size=20, level="L2A")
    assert ModelContext.of_scene(scene) == ModelContext(20.0, "L2A")
    with_sun = ModelContext.of_scene(replace(scene, angles=SunAngles(30, 150)))
    assert (with_sun.sun_zenith, with_sun.sun_azimuth) == (30, 150)
    meta = {"resolution": "60", "level": "L1C", "sun_zenith": 40, "id": "x"}
    context = ModelContext.of_meta(meta)
    assert context == ModelContext(60.0, "L1C", 40.0, None)
    assert context.resolution == 60.0 and context.sun_azimuth is None
    # the known facts, as the pseudo-label cache digests them
    assert context.known() == {"resolution": 60.0, "level": "L1C", "sun_zenith": 40.0}
    # attributes only: no mapping reading, so that a misspelt fact fails (mypy, and here)
    assert not isinstance(context, Mapping) and not hasattr(context, "get")
    with pytest.raises(TypeError):
        context["resolution"]  # type: ignore[index]
    assert ModelContext.of_meta({}).resolution == 10.0 and ModelContext().resolution is None
    assert hash(context) == hash(ModelContext.of_meta(meta))


def test_models_take_an_empty_context() -> None:
    from s2clouds.models.physical import PhysicalModel

    model = PhysicalModel.for_bands(("B02", "B03", "B04", "B08"))
    assert model.required_halo(ModelContext()) == model.required_halo(ModelContext(10.0))
    probs = model.predict_proba(np.full((4, 16, 16), 0.1, np.float32), ModelContext())
    assert probs.shape == (4, 16, 16)


class Duck:
    """A model that does not subclass CloudModel: name, bands, halo and predict_proba only."""

    name, bands, halo = "duck", ("B02", "B03", "B04", "B08"), 3

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        probs = np.zeros((4, *image.shape[1:]), np.float32)
        probs[0] = 1.0
        return probs


def test_cloud_model_is_an_abc_and_duck_models_get_its_defaults() -> None:
    from s2clouds.models.base import (
        CloudModel,
        DuckModel,
        SupportsCloudModel,
        as_cloud_model,
    )

    class Half(CloudModel):  # no predict_proba
        name, bands, halo = "half", ("B02",), 0

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]
    duck = Duck()
    assert isinstance(duck, SupportsCloudModel) and not isinstance(duck, CloudModel)
    model = as_cloud_model(duck)
    assert isinstance(model, DuckModel) and model.name == "duck"
    assert (
        model.required_halo(ModelContext()) == 3 and model.required_alignment(ModelContext()) == 1
    )
    assert model.internal_factor(ModelContext()) == 1 and model.tile_size is None
    assert model.estimate_sun_angles is None and model.overview_shadow_reach is None
    assert as_cloud_model(model) is model
    with pytest.raises(ModelError, match="lacks halo, predict_proba"):
        as_cloud_model(type("Bare", (), {"name": "x", "bands": ()})())


def test_run_tile_means_the_callers_tile() -> None:
    from s2clouds.inference.window import predict_array
    from s2clouds.models.base import RUN_TILE, DuckModel

    seen: list[tuple[int, ...]] = []

    class Tiled(DuckModel):
        @property
        def tile_size(self) -> int | None:
            return RUN_TILE

        def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
            seen.append(image.shape[1:])
            return super().predict_proba(image, context)

    probs = predict_array(Tiled(Duck()), np.zeros((4, 96, 96), np.float32), ModelContext(), tile=64)
    assert probs.shape == (4, 96, 96) and set(seen) == {(64, 64)}
