"""Peers at their documented operating points, for the benchmarks: ``NAME@30m`` runs model
``NAME`` on block means of the 10 m input at about 30 m (ukis-csmask's and CD-FCNN's
documented setting) and interpolates its probabilities back to the 10 m grid, so that every
model gives the same 10 m output."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from s2clouds.bands import canonical_band_names
from s2clouds.inference.window import predict_array
from s2clouds.models.registry import get_model
from s2clouds.resample import block_mean, upsample_bilinear

INPUT_RESOLUTION = 10.0


def operating_point(model_name: str) -> tuple[str, int]:
    """The registry name of ``NAME@30m`` and its block-averaging factor from 10 m input."""
    name, _, where = model_name.partition("@")
    if not where:
        return name, 1
    metres = float(where.removesuffix("m"))
    return name, max(1, round(metres / INPUT_RESOLUTION))


def predict_at(
    model_name: str,
    image: np.ndarray,
    bands: Sequence[str],
    level: str | None,
    context: dict | None = None,
) -> np.ndarray:
    """Probabilities (4, H, W) of ``model_name`` (``NAME`` or ``NAME@30m``) on 10 m
    reflectance ``image`` (C, H, W) in ``bands`` order; raises S2CloudsError when the model
    cannot run on these bands or level."""
    name, factor = operating_point(model_name)
    model = get_model(name, bands, level)
    idx = [canonical_band_names(tuple(bands)).index(b) for b in model.bands]
    selected = np.ascontiguousarray(image[idx])
    coarse = block_mean(selected, factor, fill=np.nan) if factor > 1 else selected
    run = {**(context or {}), "resolution": INPUT_RESOLUTION * factor, "level": level}
    probs = predict_array(model, coarse, run)
    if factor > 1:
        probs = upsample_bilinear(probs, factor, selected.shape[1:])
    return probs
