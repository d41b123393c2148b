"""Megapixels per second of every registered model on this CPU, beside ukis-csmask, in one run.

The input is real L1C reflectance (the s2cloudless test scene in ``../shared/data/real``)
tiled to ``--size`` x ``--size`` at 10 m. Each model runs through the same tiled engine
(:func:`s2clouds.inference.predict.predict_array`) on the bands it needs, after one warm-up
call; the best of ``--repeats`` runs counts.

    python benchmarks/model_speed.py [--size 2048] [--repeats 2] [--models physical,ukis-csmask]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from s2clouds.bands import L1C_BANDS, band_indices
from s2clouds.inference.window import predict_array
from s2clouds.models.registry import get_model, list_models

REAL = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "real"
    / "s2cloudless_l1c_scene"
    / "input_arrays.npz"
)
PEER = "ukis-csmask@native"  # the reference of docs' ratios: ukis-csmask at the input's 10 m


def real_scene(size: int) -> np.ndarray:
    """(13, size, size) float32 L1C reflectance tiled from the real scene."""
    real = np.load(REAL)["s2_im"][0]
    reps = (-(-size // real.shape[0]), -(-size // real.shape[1]), 1)
    return np.ascontiguousarray(
        np.moveaxis(np.tile(real, reps)[:size, :size], -1, 0), dtype=np.float32
    )


def time_model(name: str, image: np.ndarray, bands: tuple[str, ...], repeats: int) -> float:
    """Best seconds of ``repeats`` runs of model ``name`` on ``image`` after a warm-up."""
    model = get_model(name, bands)
    selected = image[band_indices(bands, model.bands)]
    context = {"resolution": 10.0, "sun_zenith": 35.0, "sun_azimuth": 150.0, "level": "L1C"}
    predict_array(model, selected[:, :256, :256], context)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict_array(model, selected, context)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--models", default=None, help="comma-separated names (default: all registered)"
    )
    args = parser.parse_args()
    image = real_scene(args.size)
    names = args.models.split(",") if args.models else [m.name for m in list_models()]
    if PEER not in names:
        names.append(PEER)
    megapixels = args.size**2 / 1e6
    rates: dict[str, float] = {}
    for name in names:
        for label, bands in (
            (f"{name} (4 bands)", ("B02", "B03", "B04", "B08")),
            (f"{name} (13 bands)", L1C_BANDS),
        ):
            try:
                rates[label] = megapixels / time_model(name, image, bands, args.repeats)
            except Exception as exc:  # a model that cannot use these bands is reported, not fatal
                print(f"{label:40s} skipped: {str(exc).splitlines()[0][:80]}")
    peer = rates.get(f"{PEER} (4 bands)")
    print(
        f"\ninput {args.size} x {args.size} px at 10 m, {megapixels:.1f} MP, real L1C reflectance"
    )
    print(f"{'model':40s} {'MP/s':>8s} {'vs ukis-csmask 4-band':>22s}")
    for label, rate in rates.items():
        ratio = f"{rate / peer:21.1f}x" if peer else "                    -"
        print(f"{label:40s} {rate:8.2f} {ratio}")


if __name__ == "__main__":
    main()
