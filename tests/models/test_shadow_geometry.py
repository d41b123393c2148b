"""Shadow is kept only where a cloud lies towards the sun within the reach."""

from __future__ import annotations

import numpy as np

from s2clouds.models.base import ModelContext
from s2clouds.models.shadow_geometry import (
    CONTEXT_PX,
    casting_cloud,
    constrain_shadow,
    shadow_reach,
    sun_from_context,
)


def _cloud(shape=(100, 100)) -> np.ndarray:
    cloud = np.zeros(shape, bool)
    cloud[40:50, 40:50] = True
    return cloud


def test_unknown_sun_reaches_every_direction_within_the_distance() -> None:
    reach = shadow_reach(_cloud(), resolution=20.0, reach_m=400.0)
    assert reach[45, 45] and reach[45, 65] and reach[25, 45]  # 20 px = 400 m away
    assert not reach[45, 80] and not reach[5, 5]


def test_known_sun_projects_away_from_the_sun() -> None:
    # sun in the south (azimuth 180) at 45 degrees: shadows fall north (smaller rows)
    reach = shadow_reach(_cloud(), resolution=20.0, reach_m=2000.0, sun=(45.0, 180.0))
    assert reach[25, 45]  # north of the cloud
    assert not reach[70, 45]  # south: towards the sun, no shadow
    assert not shadow_reach(np.zeros((10, 10), bool), 20.0, 2000.0).any()


def test_constrain_moves_unreachable_shadow_to_clear() -> None:
    probs = np.zeros((4, 100, 100), np.float32)
    probs[3] = 0.7
    probs[0] = 0.3
    probs[1][40:50, 40:50] = 1.0
    probs[0][40:50, 40:50] = probs[3][40:50, 40:50] = 0.0
    out = constrain_shadow(probs.copy(), 20.0, 300.0, None)
    assert np.allclose(out.sum(axis=0), probs.sum(axis=0))
    assert out[3, 45, 55] == np.float32(0.7)  # next to the cloud: kept
    assert out[3, 90, 90] == 0 and out[0, 90, 90] == np.float32(1.0)


def test_no_cloud_means_no_shadow_anywhere() -> None:
    probs = np.zeros((4, 30, 30), np.float32)
    probs[3] = 0.9
    probs[0] = 0.1
    out = constrain_shadow(probs, 10.0, 2500.0, (30.0, 150.0))
    assert not out[3].any()


def test_specks_cast_no_shadow_and_sun_from_context() -> None:
    probs = np.zeros((4, 50, 50), np.float32)
    probs[1][5, 5:40] = 1.0  # a one-pixel-wide bright thread (a roof line, a coast)
    probs[1][20:30, 20:30] = 1.0
    cast = casting_cloud(probs)
    assert not cast[5, 5] and cast[25, 25]
    assert sun_from_context(ModelContext(sun_zenith=30, sun_azimuth=150.5)) == (30.0, 150.5)
    assert sun_from_context(ModelContext(sun_zenith=30)) is None


def test_onnx_models_with_a_shadow_reach_keep_only_castable_shadow(monkeypatch) -> None:
    """The ONNX runner shares the pixel model's geometric constraint (ShadowGeometry): with
    ``shadow_reach_m`` in the spec, shadow beyond any cloud's reach becomes clear, the halo
    grows by the reach, and a spec without a reach leaves the network's output alone."""
    from s2clouds.models.cdfcnn import VARIANTS
    from s2clouds.models.onnx_model import OnnxModel

    variant = VARIANTS["cd-fcnn-rgbi"]
    plain = OnnxModel(variant.onnx_path)
    spec = plain.spec.replace(shadow_reach_m=1000.0)
    reaching = OnnxModel(variant.onnx_path, spec)
    probs = np.zeros((4, 90, 90), np.float32)
    probs[0] = 1.0
    probs[:, 10:30, 10:30] = np.array([0, 1, 0, 0], np.float32)[:, None, None]  # a cloud
    probs[:, 35:45, 10:30] = np.array([0, 0, 0, 1], np.float32)[:, None, None]  # near it
    probs[:, 75:85, 75:85] = np.array([0, 0, 0, 1], np.float32)[:, None, None]  # 1.5 km off
    for model in (plain, reaching):
        monkeypatch.setattr(model, "network_probabilities", lambda image: probs.copy())
    image = np.full((4, 270, 270), 0.1, np.float32)
    context = ModelContext(resolution=10.0)
    kept = reaching.predict_proba(image, context).argmax(0)
    assert (kept[110:130, 40:80] == 3).all() and (kept[225:255, 225:255] == 0).all()
    untouched = plain.predict_proba(image, context).argmax(0)
    assert (untouched[228:252, 228:252] == 3).all()
    # the 1000 m reach is 100 px at 10 m, plus the constraint's context at the 3x model grid
    assert reaching.required_halo(context) == plain.required_halo(context) + 100 + CONTEXT_PX * 3
