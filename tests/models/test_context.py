from dataclasses import replace

import numpy as np

from s2clouds.io.scene import SunAngles
from s2clouds.io.scenes import read_scene
from s2clouds.models.base import ModelContext


def test_one_constructor_per_source_and_dict_reading() -> None:
    image = np.full((4, 8, 8), 0.1, np.float32)
    scene = read_scene(image, bands=["B02", "B03", "B04", "B08"], pixel_size=20, level="L2A")
    assert ModelContext.of_scene(scene) == ModelContext(20.0, "L2A")
    with_sun = ModelContext.of_scene(replace(scene, angles=SunAngles(30, 150)))
    assert (with_sun.sun_zenith, with_sun.sun_azimuth) == (30, 150)
    meta = {"resolution": "60", "level": "L1C", "sun_zenith": 40, "id": "x"}
    context = ModelContext.of_meta(meta)
    assert context == ModelContext(60.0, "L1C", 40.0, None)
    assert context["resolution"] == 60.0 and context.get("sun_azimuth") is None
    # unknown facts are absent, so a model's default applies (as with the dicts before)
    assert dict(context) == {"resolution": 60.0, "level": "L1C", "sun_zenith": 40.0}
    assert context.get("sun_azimuth", 150.0) == 150.0 and "sun_azimuth" not in context
    assert ModelContext.of_meta({}).resolution == 10.0 and ModelContext().resolution is None
    assert hash(context) == hash(ModelContext.of_meta(meta))


def test_models_take_an_empty_context() -> None:
    from s2clouds.models.physical import PhysicalModel

    model = PhysicalModel.for_bands(("B02", "B03", "B04", "B08"))
    assert model.required_halo(ModelContext()) == model.required_halo({"resolution": 10.0})
    probs = model.predict_proba(np.full((4, 16, 16), 0.1, np.float32), ModelContext())
    assert probs.shape == (4, 16, 16)
