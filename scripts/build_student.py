"""Train the convolutional students (tiny-unet at 30 m) on the pixel models' training data.

    python scripts/build_student.py --bands swir6 --out runs/student-swir6

The student sees the same real images, labels, held-out split and real-cloud composites as the
pixel models (``scripts/build_pixel_models.py``: change labels of SEN12MS-CR pairs and dates,
clear real surfaces, real cloud layers over them; On Cloud N chips 1-2 for the 4-band one),
every image as L1C-like and L2A-like copies, as block means at 20, 30 and 40 m; it learns from
random 64 px crops (flips, 90 degree turns, +-10 % brightness) with class-prior weighted
cross-entropy that ignores unlabelled pixels. The network works at 30 m internally, like the
peers ukis-csmask and CD-FCNN. ``--out`` receives ``student.pt`` (an s2clouds training
checkpoint: export it with ``s2clouds export``), ``metrics.csv`` and the ONNX model with its
spec (``<name>.onnx`` / ``.json``), whose notes say what it was trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import build_pixel_models as recipe  # noqa: E402

from s2clouds.bands import RGBN_BANDS, SWIR6_BANDS, SWIR10_BANDS  # noqa: E402
from s2clouds.labels import NODATA  # noqa: E402
from s2clouds.models.weights import WeightSpec  # noqa: E402
from s2clouds.train.surfaces import Labelled, coarsen  # noqa: E402

STACKS = {"swir6": SWIR6_BANDS, "swir10": SWIR10_BANDS, "rgbn": RGBN_BANDS}
RESOLUTION = 30.0
CROP = 64
#: block-mean factors of the 10 m images: 20, 30 (the operating point, twice) and 40 m
FACTORS = (2, 3, 3, 4)
SHADOW_REACH_M = recipe.SHADOW_REACH_M


def gather(data: Path, bands: tuple[str, ...], seed: int) -> list[Labelled]:
    """The pixel models' training items for a model on ``bands`` (composites with SWIR only,
    Mojave and On Cloud N for the 4-band one), each with its other-level copy."""
    rng = np.random.default_rng(seed + 7)
    surfaces = recipe.surface_sources(data)
    eurosat = recipe.pool_sources(data)
    mosaics = recipe.eurosat_mosaics(eurosat, rng)
    # EuroSAT patches (64 px) enter as 4 x 4 mosaics only: a single patch is 21 px at 30 m,
    # mostly padding for a network that sees 64 px
    items = recipe.pair_sources(data) + recipe.series_sources(data) + surfaces + mosaics
    if "B11" in bands:
        layers = recipe.training_layers(data)
        under = surfaces + mosaics
        for _ in range(2):  # two draws of layers per surface: the net sees many clouds
            items += recipe.composite_sources(under, layers, rng)
    else:
        items += recipe.mojave_sources(data) + recipe.oncloudn_sources(data)
    out = []
    for base in items:
        for variant in recipe.radiometric_variants(base, rng):
            item = recipe.for_model(variant, bands, rng)
            if item is not None:
                out.append(item)
    return out


def coarse_samples(items: list[Labelled]) -> list[tuple[np.ndarray, np.ndarray, float, str]]:
    """(image (C, h, w) float32, target (h, w) uint8, weight, name) at each factor."""
    out = []
    for item in items:
        for factor in FACTORS:
            image, target = coarsen(item.image, item.target, factor)
            if min(target.shape) >= 8 and np.any(target != NODATA):
                out.append((image, target, float(item.weight), item.name))
    return out


def crop(
    image: np.ndarray, target: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A CROP x CROP window (NaN / 255 padded when the image is smaller), flipped and turned."""
    c, h, w = image.shape
    out_i = np.full((c, CROP, CROP), np.nan, np.float32)
    out_t = np.full((CROP, CROP), NODATA, np.uint8)
    r = int(rng.integers(0, max(1, h - CROP + 1)))
    q = int(rng.integers(0, max(1, w - CROP + 1)))
    hh, ww = min(h, CROP), min(w, CROP)
    out_i[:, :hh, :ww] = image[:, r : r + hh, q : q + ww]
    out_t[:hh, :ww] = target[r : r + hh, q : q + ww]
    k = int(rng.integers(0, 4))
    out_i, out_t = np.rot90(out_i, k, (1, 2)), np.rot90(out_t, k)
    if rng.random() < 0.5:
        out_i, out_t = out_i[:, :, ::-1], out_t[:, ::-1]
    # brightness (+-10 %), each band's gain (+-5 %) and a small offset: sensors, levels and
    # atmospheres differ more than a few hundred training images show
    gains = rng.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05, size=(c, 1, 1))
    out_i = out_i * gains.astype(np.float32) + np.float32(rng.uniform(-0.01, 0.02))
    return np.ascontiguousarray(out_i), np.ascontiguousarray(out_t)


def band_stats(samples: list) -> tuple[tuple[float, ...], tuple[float, ...]]:
    stack = np.concatenate([s[0].reshape(s[0].shape[0], -1) for s in samples], axis=1)
    mean = np.nanmean(stack, axis=1)
    std = np.nanstd(stack, axis=1)
    return tuple(float(v) for v in mean), tuple(float(max(v, 1e-3)) for v in std)


def class_weights(samples: list) -> np.ndarray:
    counts = np.zeros(4)
    for _, target, weight, _ in samples:
        counts += weight * np.bincount(target[target != NODATA], minlength=4)[:4]
    weights = recipe.CLASS_PRIORS / np.maximum(counts / counts.sum(), 1e-6)
    return weights / weights.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parents[1] / "shared" / "data" / "real")
    parser.add_argument("--bands", choices=sorted(STACKS), default="swir6")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from s2clouds.train.architectures import build_model, get_architecture, save_trained
    from s2clouds.train.export import export_onnx

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    bands = tuple(STACKS[args.bands])
    started = time.time()
    samples = coarse_samples(gather(args.data, bands, args.seed))
    rng = np.random.default_rng(args.seed)
    names = sorted({s[3] for s in samples})
    val_names = {n for n in names if rng.random() < 0.08}
    train = [s for s in samples if s[3] not in val_names]
    val = [s for s in samples if s[3] in val_names]
    mean, std = band_stats(train)
    weights = torch.tensor(class_weights(train), dtype=torch.float32)
    print(
        f"{len(train)} training and {len(val)} validation samples of {len(names)} images "
        f"in {time.time() - started:.0f} s; class weights {weights.numpy().round(2)}",
        flush=True,
    )
    arch = get_architecture("tiny-unet")
    name = f"s2clouds-student-{args.bands}"
    spec = WeightSpec(
        name=name,
        architecture="tiny-unet",
        bands=bands,
        mean=mean,
        std=std,
        resolution=RESOLUTION,
        tile_size=1024,
        size_multiple=arch.size_multiple,
        halo=arch.halo,
        shadow_reach_m=SHADOW_REACH_M,
        training_data=recipe.training_data_text(
            "s2clouds-pixel-rgbn" if args.bands == "rgbn" else "s2clouds-pixel-swir6"
        ),
        licence="CC BY 4.0 (Copernicus Sentinel-2 data; On Cloud N CC BY 4.0; DSen2 CC BY 4.0); "
        "SEN12MS-CR terms expected CC BY, not verified",
        notes=(
            f"scripts/build_student.py --bands {args.bands} --epochs {args.epochs} "
            f"--batch {args.batch} --lr {args.lr:g} --seed {args.seed}",
            "a tiny-unet student at 30 m (block means of finer input), trained on the "
            "pixel models' labels: change labels, clear real surfaces and real-cloud "
            "composites; shadow kept only within reach of a cloud towards the sun",
        ),
    )
    model = build_model("tiny-unet", len(bands))
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * max(1, len(train) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=NODATA, reduction="none")
    history = []
    best = (-1.0, None)
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(train))
        total, seen = 0.0, 0
        for start in range(0, len(order) - args.batch + 1, args.batch):
            batch = [crop(train[i][0], train[i][1], rng) for i in order[start : start + args.batch]]
            x = torch.from_numpy(np.stack([spec.normalise(b[0]) for b in batch]))
            y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64))
            w = torch.tensor([train[i][2] for i in order[start : start + args.batch]])
            per_pixel = loss_fn(model(x), y)
            loss = (per_pixel.mean(dim=(1, 2)) * w).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        f1 = validate(model, spec, val)
        history.append({"epoch": epoch + 1, "loss": total / max(seen, 1), **f1})
        print(json.dumps(history[-1]), f"{time.time() - started:.0f} s", flush=True)
        score = (f1["cloud_f1"] + f1["shadow_f1"]) / 2
        if score > best[0]:
            best = (score, {k: v.clone() for k, v in model.state_dict().items()})
    with open(args.out / "metrics.csv", "w") as fh:
        fh.write(",".join(history[0]) + "\n")
        for row in history:
            fh.write(
                ",".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values())
                + "\n"
            )
    model.load_state_dict(best[1])
    checkpoint = save_trained(args.out / "student.pt", model.eval(), spec)
    result = export_onnx(checkpoint, args.out / f"{name}.onnx")
    print(
        f"{result.onnx_path} (best validation score {best[0]:.3f}) in "
        f"{time.time() - started:.0f} s",
        flush=True,
    )


def validate(model, spec: WeightSpec, val: list) -> dict[str, float]:
    """Cloud (thick or thin), thin and shadow F1 on whole validation images (the benchmark's
    confusion matrix and metrics, unlabelled pixels left out)."""
    import torch

    from s2clouds.benchmark.confusion import ConfusionMatrix
    from s2clouds.benchmark.metrics import binary_counts, binary_scores

    model.eval()
    confusion = ConfusionMatrix(4, ignore_index=NODATA)
    with torch.no_grad():
        for image, target, _, _ in val:
            h, w = target.shape
            x = np.zeros((image.shape[0], -(-h // 16) * 16, -(-w // 16) * 16), np.float32)
            x[:, :h, :w] = spec.normalise(image)
            pred = model(torch.from_numpy(x[None]))[0].argmax(0).numpy()[:h, :w]
            confusion.update(pred.astype(np.uint8), target)
    model.train()
    tasks = {"cloud_f1": (1, 2), "thin_f1": (2,), "shadow_f1": (3,)}
    return {
        name: float(binary_scores(binary_counts(confusion.counts, classes))["f1"])
        for name, classes in tasks.items()
    }


if __name__ == "__main__":
    main()
