"""Megapixels of 10 m output per second of every registered model on this CPU, beside
ukis-csmask at its documented 30 m (and at 10 m), in one run.

The input is real L1C reflectance (the s2cloudless test scene in ``../shared/data/real``)
tiled to ``--size`` x ``--size`` at 10 m. Each model runs through the same tiled engine
(:func:`s2clouds.inference.window.predict_array`) on the bands it needs, after one warm-up
call; the best of ``--repeats`` runs counts. The peers run at their documented operating
points, as s2clouds runs them by default (ukis-csmask and CD-FCNN on block means at 30 m,
probabilities interpolated back to 10 m; the time includes both steps), so every row is the
same 10 m output; ``ukis-csmask@native`` runs at 10 m. Stacks: 4, 6, 10 and 13 bands.

    python benchmarks/model_speed.py [--size 2048] [--repeats 2] [--models auto,physical]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from s2clouds.bands import L1C_BANDS, RGBN_BANDS, SWIR6_BANDS, SWIR10_BANDS, band_indices  # noqa: E402
from s2clouds.inference.window import predict_array  # noqa: E402
from s2clouds.models.base import ModelContext
from s2clouds.models.registry import get_model, list_models  # noqa: E402

REAL = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "real"
    / "s2cloudless_l1c_scene"
    / "input_arrays.npz"
)
PEER = "ukis-csmask"  # at its documented 30 m (the default); ukis-csmask@native is at 10 m
#: the band stacks each model is timed on
STACKS = {
    "4 bands": RGBN_BANDS,
    "6 bands": SWIR6_BANDS,
    "10 bands": SWIR10_BANDS,
    "13 bands": L1C_BANDS,
}


def real_scene(size: int) -> np.ndarray:
    """(13, size, size) float32 L1C reflectance tiled from the real scene."""
    real = np.load(REAL)["s2_im"][0]
    reps = (-(-size // real.shape[0]), -(-size // real.shape[1]), 1)
    return np.ascontiguousarray(
        np.moveaxis(np.tile(real, reps)[:size, :size], -1, 0), dtype=np.float32
    )


def time_model(name: str, image: np.ndarray, bands: tuple[str, ...], repeats: int) -> float:
    """Best seconds of ``repeats`` runs of model ``name`` on the ``bands`` of the 13-band
    ``image`` (10 m), after a warm-up."""
    model = get_model(name, bands, "L1C")
    selected = np.ascontiguousarray(image[band_indices(L1C_BANDS, model.bands)])
    context = ModelContext(resolution=10.0, sun_zenith=35.0, sun_azimuth=150.0, level="L1C")
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
    for peer in (PEER, f"{PEER}@native"):
        if peer not in names:
            names.append(peer)
    megapixels = args.size**2 / 1e6
    rates: dict[str, float] = {}
    for name in names:
        for stack, bands in STACKS.items():
            label = f"{name} ({stack})"
            try:
                rates[label] = megapixels / time_model(name, image, bands, args.repeats)
            except Exception as exc:  # a model that cannot use these bands is reported, not fatal
                print(f"{label:40s} skipped: {str(exc).splitlines()[0][:80]}")
    peer = max((r for k, r in rates.items() if k.startswith(PEER + " ")), default=None)
    print(
        f"\ninput {args.size} x {args.size} px at 10 m, {megapixels:.1f} MP, real L1C reflectance"
    )
    print(f"{'model':40s} {'MP/s':>8s} {'vs ukis-csmask at 30 m (its fastest)':>38s}")
    for label, rate in rates.items():
        ratio = f"{rate / peer:37.2f}x" if peer else " " * 37 + "-"
        print(f"{label:40s} {rate:8.2f} {ratio}")


if __name__ == "__main__":
    main()
