"""Build the shipped band-aware pixel models from real data (the recipe of docs/training.md).

    python scripts/build_pixel_models.py --data ../shared/data/real --out src/s2clouds/models/weights

Training data (all real Sentinel-2; see ../shared/data/real/README.md for sources/licences):
* SEN12MS-CR cloudy/clear pairs: the cloudy images labelled by change against their clear
  partner (s2clouds.labels.change), and the clear halves as clear (except where the clear
  image itself holds cloud that the cloudy one lacks);
* the SEN12MS-CR-TS year series: each date labelled against a per-pixel temporal reference;
* cloud-free hard surfaces labelled clear: DSen2 crops (salt flats, farmland, a desert city),
  S2-100K patches (ice, snow, sand seas, deserts, tundra; the cumulus patch 511198 left out),
  Mojave burn-scar images (4-band model only);
* On Cloud N chips 1-2 with their human cloud labels (4-band model only); the labels have no
  shadow class, so shadow and clear on the pixels the annotators called not cloud come from
  the peer ukis-csmask (Apache-2.0) as a teacher, and pixels it calls cloud are ignored.

Held out for the accuracy benchmark (never read here): every 5th usable pair, every 3rd date
of the series, On Cloud N chip 3, DSen2 T39RVJ, S2-100K 759128, 33188 and 445, and every 4th
Mojave image (see HOLDOUT below and benchmarks/accuracy.py, which imports it).

Each image is also used as an L2A-like (path reflectance removed) or TOA-like (added) copy,
and at 20 m and 30 m (block means), so that one model serves L1C and L2A at 10-60 m.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from holdout import EVERY, HELD_OUT_SOURCES, HOLDOUT, is_held_out  # noqa: E402

from s2clouds.bands import (  # noqa: E402
    L1C_BANDS,
    L2A_BANDS,
    RGBN_BANDS,
    SWIR6_BANDS,
    SWIR10_BANDS,
)
from s2clouds.labels import NODATA  # noqa: E402
from s2clouds.models.pixel import PixelModel, pixel_spec  # noqa: E402
from s2clouds.models.pixel_features import default_features, pixel_features  # noqa: E402
from s2clouds.train.cloud_layers import (  # noqa: E402
    CloudLayer,
    Geometry,
    composite_layer,
    layers_from_pairs,
)
from s2clouds.train.pixel import PixelTrainConfig, fit_booster  # noqa: E402
from s2clouds.train.surfaces import (  # noqa: E402
    Labelled,
    all_clear,
    coarsen,
    impute_cirrus,
    l2a_like,
    read_dsen2,
    read_geotiff_dn,
    toa_like,
)

L1C13, SWIR12, RGBN = L1C_BANDS, L2A_BANDS, RGBN_BANDS
#: the shipped models: name -> (bands, which inputs it is for)
MODELS = {
    "s2clouds-pixel-l1c13": (L1C13, "13-band L1C (with the cirrus band B10)"),
    "s2clouds-pixel-swir12": (SWIR12, "12-band L1C or L2A (no B10)"),
    "s2clouds-pixel-swir10": (SWIR10_BANDS, "the 10 and 20 m bands B02-B08, B8A, B11, B12"),
    "s2clouds-pixel-swir6": (SWIR6_BANDS, "B02 B03 B04 B08 B11 B12, L1C or L2A"),
    "s2clouds-pixel-rgbn": (RGBN, "4 bands B02 B03 B04 B08, L1C or L2A"),
}
#: real cloud layers laid over each clear training surface (s2clouds.train.cloud_layers),
#: weighted below the real images (their clouds are real, their scenes are not)
COMPOSITES_PER_SURFACE = 3
COMPOSITE_WEIGHT = 0.5
#: EuroSAT patches (64 px) tiled 4 x 4 per land-cover class into 256 px surfaces for the
#: composites, so that the context features see a scene, not a stamp
EUROSAT_TILING, EUROSAT_MOSAICS_PER_CLASS = 4, 3

#: share of the total weight each class gets (realistic priors, clear first)
CLASS_PRIORS = np.array([0.5, 0.2, 0.12, 0.18])
CLASS_NAMES = ("clear", "thick", "thin", "shadow")
PIXELS_PER_CLASS = 1500
CLEAR_HALF_WEIGHT = 0.3
#: clear images without B10 get B10 = leak x B12 with leak drawn up to this: over dry bright
#: deserts the surface shows through the cirrus band (0.02-0.04 TOA over sand with B12 near
#: 0.4), and a 13-band model must not learn "B10 above 0.012 = cloud" there
LEAK_MAX = 0.1
#: the only human labels (L2A, 4 bands): weighted up in the 4-band model
OCN_WEIGHT = 4.0
MODEL_RESOLUTION = 20.0
#: trees run on every 3rd model pixel (60 m cells at 10 m input; bilinear in between): the
#: trees, not the features, cost the time
STRIDE = 3
LEARNING_RATE = 0.25
#: shadow is kept only within this distance of a cloud, towards the sun when the sun angles
#: are known (s2clouds.models.shadow_geometry): dark water, forest and burn scars with no
#: cloud nearby are not shadow. 2.5 km covers clouds up to ~2.5 km at a 45 degree sun.
SHADOW_REACH_M = 2500.0


# ---------------------------------------------------------------------------- sources
def pair_sources(data: Path) -> list[Labelled]:
    """Cloudy images of the training pairs with change labels, and their clear halves."""
    from s2clouds.datasets.sen12mscr import SEN12MSCRPairs

    pairs = SEN12MSCRPairs(data / "sen12mscr" / "pairs")
    out = []
    for sample in pairs:
        name = sample["meta"]["id"]
        if is_held_out("pairs", name):
            continue
        bands = tuple(sample["bands"])
        out.append(Labelled(sample["image"], bands, sample["mask"], "L1C", f"pair:{name}"))
        out.append(clear_half(sample["reference"], sample["image"], sample["mask"], bands, name))
    return out


def clear_half(
    clear: np.ndarray,
    cloudy: np.ndarray,
    cloudy_mask: np.ndarray,
    bands: tuple[str, ...],
    name: str,
) -> Labelled:
    """The "clear" image of a pair, labelled clear except where the reverse comparison
    (clear against cloudy) finds cloud, cirrus or shadow in it, and ignored where neither
    comparison explains the change. Some SEN12MS-CR "clear" images lie under cirrus."""
    from s2clouds.labels.change import BandPlanes, ChangeRules, change_labels, cirrus_sky

    reverse = change_labels(clear, cloudy, bands)
    target = all_clear(clear)
    if reverse.usable:
        flagged = (reverse.mask >= 1) & (reverse.mask <= 3)
        target[flagged] = reverse.mask[flagged]
        target[(reverse.mask == NODATA) & (cloudy_mask == NODATA)] = NODATA
    cirrus = cirrus_sky(BandPlanes(clear, bands), ChangeRules()) & (target == 0)
    target[cirrus] = 2  # thin cloud: cirrus over the whole "clear" image
    # weighted down: eleven halves of one region under one cirrus veil would otherwise make
    # most thin-cloud examples, and the model would learn thin cloud as "B10 is high"
    return Labelled(clear, bands, target, "L1C", f"clear:{name}", CLEAR_HALF_WEIGHT)


def series_sources(data: Path) -> list[Labelled]:
    from s2clouds.datasets.sen12mscr import SEN12MSCRSeries

    series = SEN12MSCRSeries(data / "sen12mscr" / "timeseries")
    return [
        Labelled(s["image"], tuple(s["bands"]), s["mask"], "L1C", f"series:{s['meta']['id']}")
        for s in series
        if not is_held_out("series", s["meta"]["id"])
    ]


def surface_sources(data: Path) -> list[Labelled]:
    """Cloud-free hard surfaces, labelled clear, weighted up (few but decisive)."""
    out = []
    for path in sorted((data / "dsen2").glob("*.npz")):
        if not is_held_out("dsen2", path.stem):
            image, bands = read_dsen2(path)
            out.append(Labelled(image, bands, all_clear(image), "L1C", f"dsen2:{path.stem}", 3.0))
    for path in sorted((data / "s2_100k").glob("*.tif")):
        if not is_held_out("s2_100k", path.stem) and path.stem != "patch_511198":
            image, bands = read_geotiff_dn(path)
            out.append(Labelled(image, bands, all_clear(image), "L2A", f"s2_100k:{path.stem}", 2.0))
    return out


def pool_sources(data: Path) -> list[Labelled]:
    """Clear EuroSAT patches of the pool (13-band L1C, all ten land-cover classes) that are
    not held out, labelled clear (every patch was checked cloud-free by eye)."""
    out = []
    for path in sorted((data / "pool" / "eurosat_ms").glob("*.tif")):
        if not is_held_out("eurosat", path.stem):
            image, bands = read_geotiff_dn(path, offset=0.0)
            out.append(Labelled(image, bands, all_clear(image), "L1C", f"eurosat:{path.stem}"))
    return out


def eurosat_mosaics(patches: list[Labelled], rng: np.random.Generator) -> list[Labelled]:
    """Same-class EuroSAT patches tiled into larger clear surfaces (see EUROSAT_TILING)."""
    by_class: dict[str, list[Labelled]] = {}
    for item in patches:
        by_class.setdefault(item.name.split(":")[1].split("_")[0], []).append(item)
    out = []
    n = EUROSAT_TILING
    for name, items in sorted(by_class.items()):
        size = min(i.image.shape[1] for i in items)
        for k in range(EUROSAT_MOSAICS_PER_CLASS):
            picks = rng.choice(len(items), n * n, replace=len(items) < n * n)
            rows = [
                np.concatenate(
                    [items[picks[r * n + c]].image[:, :size, :size] for c in range(n)], axis=2
                )
                for r in range(n)
            ]
            image = np.concatenate(rows, axis=1)
            out.append(
                Labelled(
                    image, items[0].bands, all_clear(image), "L1C", f"eurosat:{name}-mosaic{k}"
                )
            )
    return out


def training_layers(data: Path) -> list[CloudLayer]:
    """Cloud layers of the training pairs (never of held-out pairs)."""
    return layers_from_pairs(
        data / "sen12mscr" / "pairs", lambda name: not is_held_out("pairs", name)
    )


def composite_sources(
    surfaces: list[Labelled], layers: list[CloudLayer], rng: np.random.Generator
) -> list[Labelled]:
    """Each clear surface under COMPOSITES_PER_SURFACE real cloud layers drawn at random, with
    a random sun and cloud height (exact thick/thin/shadow labels by construction)."""
    out = []
    for surface in surfaces:
        for index in rng.choice(len(layers), COMPOSITES_PER_SURFACE, replace=False):
            item = composite_layer(surface, layers[index], Geometry.random(rng), rng)
            if item is not None:
                out.append(
                    Labelled(
                        item.image,
                        item.bands,
                        item.target,
                        item.level,
                        f"composite:{item.name}",
                        COMPOSITE_WEIGHT,
                    )
                )
    return out


def mojave_sources(data: Path) -> list[Labelled]:
    out = []
    for path in sorted((data / "mojave_l2a").glob("*.tif")):
        if not is_held_out("mojave", path.stem):
            image, bands = read_geotiff_dn(path, offset=0.0)
            out.append(Labelled(image, bands, all_clear(image), "L2A", f"mojave:{path.stem}"))
    return out


def oncloudn_sources(data: Path) -> list[Labelled]:
    from s2clouds.io.scenes import read_band_folder

    out = []
    for chip in sorted(data.glob("oncloudn_chip*")):
        if is_held_out("oncloudn", chip.name):
            continue
        import rasterio

        scene = read_band_folder(chip)
        image = scene.read()
        with rasterio.open(chip / "label.tif") as ds:
            label = ds.read(1)
        target = np.full(label.shape, NODATA, np.uint8)
        target[label == 1] = 1
        # the human labels have no shadow class: ukis-csmask (a peer trained on CloudSEN12+
        # and SPARCS) teaches shadow on the pixels the annotators called not cloud
        teacher = ukis_mask(image, tuple(scene.bands))
        target[(label == 0) & (teacher == 0)] = 0
        target[(label == 0) & (teacher == 3)] = 3
        out.append(
            Labelled(image, tuple(scene.bands), target, "L2A", f"oncloudn:{chip.name}", OCN_WEIGHT)
        )
    return out


def ukis_mask(image: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """Canonical mask (H, W) of the ukis-csmask peer on an L2A image (C, H, W) at 10 m, run
    at its documented operating point (about 30 m; probabilities back on the 10 m grid)."""
    from s2clouds.inference.window import predict_array
    from s2clouds.models.base import ModelContext
    from s2clouds.models.registry import get_model

    model = get_model("ukis-csmask", bands, "L2A")
    selected = image[[bands.index(b) for b in model.bands]]
    probs = predict_array(model, selected, ModelContext(resolution=10.0, level="L2A"))
    return np.argmax(probs, axis=0).astype(np.uint8)


# ---------------------------------------------------------------------------- variants
def radiometric_variants(item: Labelled, rng: np.random.Generator) -> list[Labelled]:
    """The image as it is and as the other processing level would show it."""
    if item.level == "L1C":
        other = l2a_like(item.image, item.bands, float(rng.uniform(0.6, 1.1)))
        level = "L2A"
    else:
        other = toa_like(item.image, item.bands, float(rng.uniform(0.6, 1.2)))
        level = "L1C"
    return [item, Labelled(other, item.bands, item.target, level, item.name, item.weight)]


def for_model(item: Labelled, bands: tuple[str, ...], rng: np.random.Generator) -> Labelled | None:
    """``item`` in the model's bands; a missing B10 on a clear image is imputed; None when
    the image lacks other bands, or is L2A-only data for the L1C model."""
    have = set(item.bands)
    if "B10" in bands and "B10" not in have:
        if not np.all((item.target == 0) | (item.target == NODATA)) or item.level == "L2A":
            return None
        image, names = impute_cirrus(item.image, item.bands, float(rng.uniform(0.0, LEAK_MAX)))
        item = Labelled(image, names, item.target, item.level, item.name, item.weight)
    if not set(bands) <= set(item.bands):
        return None
    return item.select(bands)


def draw_rows(
    item: Labelled, features: tuple[str, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, labels and source weights of up to PIXELS_PER_CLASS pixels per class."""
    stack = pixel_features(item.image, item.bands, features).reshape(len(features), -1)
    target = item.target.ravel()
    finite = np.all(np.isfinite(stack), axis=0)
    picks = []
    for c in range(4):
        where = np.flatnonzero((target == c) & finite)
        if where.size:
            picks.append(rng.choice(where, min(where.size, PIXELS_PER_CLASS), replace=False))
    if not picks:
        return np.empty((0, len(features)), np.float32), np.empty(0, np.uint8), np.empty(0)
    idx = np.concatenate(picks)
    return stack[:, idx].T.copy(), target[idx], np.full(idx.size, item.weight, np.float32)


def prior_weights(labels: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Row weights: source weight, rescaled so that each class's total is its prior."""
    weights = source.astype(np.float64).copy()
    for c in range(4):
        sel = labels == c
        if sel.any():
            weights[sel] *= CLASS_PRIORS[c] / weights[sel].sum()
    return (weights / weights.mean()).astype(np.float32)


def build_rows(
    items: list[Labelled],
    bands: tuple[str, ...],
    features: tuple[str, ...],
    seed: int,
    provenance: dict[str, dict[str, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, labels and weights of every item's variants; ``provenance`` collects
    {source: {class: rows}} (the source is the item name's prefix)."""
    rng = np.random.default_rng(seed)
    xs, ys, ws = [], [], []
    for base in items:
        for variant in radiometric_variants(base, rng):
            item = for_model(variant, bands, rng)
            if item is None:
                continue
            for factor in (2, 3):  # 20 m (the model grid for 10 m input) and 30 m input
                image, target = coarsen(item.image, item.target, factor)
                x, y, w = draw_rows(
                    Labelled(image, item.bands, target, item.level, item.name, item.weight),
                    features,
                    rng,
                )
                xs.append(x)
                ys.append(y)
                ws.append(w)
                if provenance is not None:
                    tally = provenance.setdefault(item.name.split(":")[0], {})
                    for c, label in enumerate(CLASS_NAMES):
                        tally[label] = tally.get(label, 0) + int(np.count_nonzero(y == c))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def training_data_text(name: str) -> str:
    """What the model ``name`` was trained on, and what was held out (for its spec)."""
    four_band = name.endswith("rgbn")
    return (
        "real Sentinel-2 only. Labels by source: SEN12MS-CR pairs labelled by change against "
        "the clear partner (s2clouds.labels.change) and their clear halves; SEN12MS-CR-TS "
        "dates labelled against a per-pixel temporal reference; cloud-free real surfaces "
        "labelled clear (DSen2 crops, S2-100K patches, EuroSAT patches of all ten land-cover "
        "classes" + (", Mojave L2A deserts and burn scars" if four_band else "") + "); "
        "composites: real cloud layers cut from the training pairs (opacity and cloud "
        "reflectance from the change labeller, B10 rise kept) laid over those clear surfaces "
        "and over 4x4 tilings of same-class EuroSAT patches, with their shadows cast along a "
        "random sun at a random cloud height, labelled thick/thin/shadow by construction"
        + (
            " (not used by this model: without SWIR the composites taught it false cloud on "
            "bright ground)"
            if "B11" not in MODELS[name][0]
            else ""
        )
        + (
            "; On Cloud N chips 1-2 with their human cloud labels, shadow and clear on the "
            "pixels the annotators called not cloud taught by ukis-csmask at 30 m (its "
            "documented operating point), its cloud there ignored"
            if four_band
            else ""
        )
        + "; each also as an L2A-like/TOA-like copy and at 20 m and 30 m"
        + (
            "; B10 imputed on clear images without it (leak x B12)"
            if "B10" in MODELS[name][0]
            else ""
        )
        + f". Held out whole: the pool sources {', '.join(HELD_OUT_SOURCES)}; held out: "
        + f"{json.dumps(HOLDOUT)}, and by the CRC-32 of their names 1 in {EVERY['pairs']} "
        + f"pairs (with their cloud layers), 1 in {EVERY['series']} dates, 1 in "
        + f"{EVERY['mojave']} Mojave images and 1 in {EVERY['eurosat']} EuroSAT patches "
        + "(benchmarks/holdout.py)"
    )


def train_model(
    name: str, items: list[Labelled], seed: int, rounds: int, out: Path, leaves: int = 31
) -> tuple[Path, dict[str, object]]:
    bands, purpose = MODELS[name]
    features = default_features(bands)
    started = time.time()
    provenance: dict[str, dict[str, int]] = {}
    x, y, w = build_rows(items, bands, features, seed, provenance)
    weights = prior_weights(y, w)
    rng = np.random.default_rng(seed + 1)
    val = rng.random(y.size) < 0.1
    config = PixelTrainConfig(
        bands=bands,
        features=features,
        rounds=rounds,
        num_leaves=leaves,
        learning_rate=LEARNING_RATE,
        min_data_in_leaf=60,
        seed=seed,
    )
    booster = fit_booster(
        x[~val],
        y[~val],
        config,
        valid=(x[val], y[val]),
        weights=weights[~val],
        valid_weights=weights[val],
    )
    counts = {c: int(np.count_nonzero(y == i)) for i, c in enumerate(CLASS_NAMES)}
    spec = pixel_spec(
        name,
        bands,
        features,
        stride=STRIDE,
        tile_size=2048,
        resolution=MODEL_RESOLUTION,
        shadow_reach_m=SHADOW_REACH_M,
        training_data=training_data_text(name),
        licence=(
            "CC BY 4.0 (Copernicus Sentinel-2 data; On Cloud N CC BY 4.0; DSen2 CC BY 4.0); "
            "SEN12MS-CR terms expected CC BY, not verified"
        ),
        notes=(
            f"for {purpose}; runs at {MODEL_RESOLUTION:g} m internally (block means of "
            "finer input, probabilities interpolated back)",
            f"training pixels per class: {counts}",
            f"training pixels per source and class: {json.dumps(provenance, sort_keys=True)}",
        ),
    )
    model = PixelModel(booster, spec)
    path = model.save(out / f"{name}.lgbm")
    return path, {
        "rows": int(y.size),
        "classes": counts,
        "rounds": booster.current_iteration(),
        "seconds": round(time.time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "src" / "s2clouds" / "models" / "weights"
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--leaves", type=int, default=31, help="leaves per tree")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.time()
    surfaces = surface_sources(args.data)
    eurosat = pool_sources(args.data)
    mojave = mojave_sources(args.data)
    common = pair_sources(args.data) + series_sources(args.data) + surfaces + eurosat
    rng = np.random.default_rng(args.seed + 7)
    layers = training_layers(args.data)
    under_cloud = surfaces + eurosat_mosaics(eurosat, rng)
    composites = composite_sources(under_cloud, layers, rng)
    print(
        f"{len(common)} real images and {len(composites)} composites of {len(layers)} real "
        f"cloud layers in {time.time() - started:.0f} s",
        flush=True,
    )
    for name in args.models.split(","):
        with_swir = "B11" in MODELS[name][0]
        # the composites need SWIR to be told from bright ground: without it they taught the
        # 4-band model false cloud on deserts and cost it 0.03 BOA on the human-labelled chips
        items = common + (composites if with_swir else [])
        if name.endswith("rgbn"):
            items += mojave + oncloudn_sources(args.data)
        path, info = train_model(name, items, args.seed, args.rounds, args.out, args.leaves)
        print(f"{path}: {info}", flush=True)


if __name__ == "__main__":
    main()
