"""Time-series masks against single-date masks on the real SEN12MS-CR series and pairs.

    python benchmarks/series.py [--data ../shared/data/real] [--peers] [--json out.json]
    python benchmarks/series.py --fit      # refit the combination weights (training pairs)

Every SEN12MS-CR-TS date (30, central Italy, 2018) is masked by the single-date model
("auto": the 13-band L1C pixel model), then refined with the other 29 dates
(:func:`s2clouds.models.series.refine_series`); every SEN12MS-CR pair is a 2-date series
(cloudy, clear). Figures, single-date vs series side by side:

1. **False cloud / false shadow on clear dates** (the most honest figure: no label model):
   the share of valid pixels called cloud or shadow on the clear halves of the pairs (those
   under cirrus left out, as in benchmarks/accuracy.py) and on the series dates that the change
   labeller finds clear (>60 % labelled, >99.5 % of it clear).
2. **Agreement with change labels** (s2clouds.labels.change) on the cloudy dates: cloud F1,
   thin F1, shadow F1 over labelled pixels, pooled. **Caution**: the labels are themselves
   derived from a temporal reference (the clear partner, or a per-pixel reference of the other
   dates) with the same kind of departure rules the series refinement uses, and the
   combination weights were fitted on the training pairs' labels: agreement partly measures
   self-consistency. Held-out pairs and dates (benchmarks/holdout.py) are shown apart.

``--peers`` adds ukis-csmask single-date where it runs. ``--fit`` prints new
``CLOUD_WEIGHTS``/``SHADOW_WEIGHTS`` from the pairs that are not held out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from holdout import is_held_out  # noqa: E402

from s2clouds.bands import canonical_band_names  # noqa: E402
from s2clouds.errors import S2CloudsError  # noqa: E402
from s2clouds.inference.window import predict_array, probabilities_to_mask  # noqa: E402
from s2clouds.labels import NODATA  # noqa: E402
from s2clouds.labels.change import BandPlanes, ChangeRules, cirrus_sky  # noqa: E402
from s2clouds.models.base import ModelContext  # noqa: E402
from s2clouds.models.registry import get_model  # noqa: E402
from s2clouds.models.series import (  # noqa: E402
    CLOUD_FEATURES,
    SHADOW_FEATURES,
    SeriesRules,
    refine_series,
    series_designs,
    series_reference,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def single_probs(model_name: str, stack: np.ndarray, bands: tuple[str, ...]) -> np.ndarray | None:
    """(T, 4, H, W) single-date probabilities of ``model_name``, or None when it cannot run."""
    try:
        model = get_model(model_name, bands, "L1C")
    except S2CloudsError:
        return None
    idx = [canonical_band_names(bands).index(b) for b in model.bands]
    context = ModelContext(resolution=10.0, level="L1C")
    return np.stack(
        [predict_array(model, np.ascontiguousarray(image[idx]), context) for image in stack]
    )


def masks(probs: np.ndarray, stack: np.ndarray) -> np.ndarray:
    return np.stack([probabilities_to_mask(p, s) for p, s in zip(probs, stack, strict=True)])


# ------------------------------------------------------------------------------ data
def load(data: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Usable pairs (cloudy, clear, labels, id) and the series (stack, labels per date)."""
    from s2clouds.datasets.sen12mscr import SEN12MSCRPairs, SEN12MSCRSeries

    pairs = [
        {
            "id": s["meta"]["id"],
            "stack": np.stack([s["image"], s["reference"]]),
            "bands": tuple(s["bands"]),
            "labels": s["mask"],
        }
        for s in SEN12MSCRPairs(data / "sen12mscr" / "pairs")
    ]
    series = SEN12MSCRSeries(data / "sen12mscr" / "timeseries", keep_unusable=True)
    folder = series.items[0][0]
    stack, bands, _, _, days = series._series(folder)
    labels = [series._labelled(folder, i)[1] for i in range(len(stack))]
    ids = [f"{folder.name}/{p.stem}" for p in series._files(folder)]
    return pairs, {
        "stack": stack,
        "bands": bands,
        "labels": labels,
        "ids": ids,
        "days": days.tolist(),
    }


# ------------------------------------------------------------------------------ scores
class Tally:
    """Pooled counts: predictions against labels (F1) and shares on clear dates."""

    def __init__(self) -> None:
        self.pred: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []
        self.clear = np.zeros(3)  # cloud px, shadow px, valid px
        self.images = 0

    def add_labelled(self, mask: np.ndarray, labels: np.ndarray) -> None:
        keep = (labels != NODATA) & (mask != NODATA)
        self.images += 1
        self.pred.append(mask[keep])
        self.truth.append(labels[keep])

    def add_clear(self, mask: np.ndarray) -> None:
        valid = mask != NODATA
        self.images += 1
        self.clear += [np.sum((mask == 1) | (mask == 2)), np.sum(mask == 3), valid.sum()]

    def scores(self) -> dict[str, float]:
        out: dict[str, float] = {"images": float(self.images)}
        if self.pred:
            p, t = np.concatenate(self.pred), np.concatenate(self.truth)
            out |= {
                "cloud F1": f1((p == 1) | (p == 2), (t == 1) | (t == 2)),
                "thin F1": f1(p == 2, t == 2),
                "shadow F1": f1(p == 3, t == 3),
                "labelled px": float(t.size),
            }
        if self.clear[2]:
            out |= {
                "false cloud %": 100 * self.clear[0] / self.clear[2],
                "false shadow %": 100 * self.clear[1] / self.clear[2],
                "clear px": float(self.clear[2]),
            }
        return out


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    denom = float(pred.sum() + truth.sum())
    return 2 * float(np.sum(pred & truth)) / denom if denom else float("nan")


def clear_date(labels: Any) -> bool:
    """A series date the change labeller finds clear: usable, over 10 % of pixels labelled and
    over 99.5 % of those clear (the labeller leaves 50-75 % of these dates' pixels unlabelled:
    seasonal change against the reference, so benchmarks/accuracy.py's 60 % rule finds none)."""
    mask = labels.mask
    labelled = mask != NODATA
    return bool(labels.usable and labelled.mean() > 0.1 and np.mean(mask[labelled] == 0) > 0.995)


def evaluate(data: Path, models: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {method: scores}} for the series and the pairs."""
    pairs, series = load(data)
    tallies: dict[str, dict[str, Tally]] = {}

    def tally(row: str, method: str) -> Tally:
        return tallies.setdefault(row, {}).setdefault(method, Tally())

    timings: dict[str, float] = {}
    stack, bands = series["stack"], tuple(series["bands"])
    for name in models:
        probs = single_probs(name, stack, bands)
        if probs is None:
            continue
        methods = {f"{name} single": masks(probs, stack)}
        if name == models[0]:
            t0 = time.perf_counter()
            refined = refine_series(stack, probs, bands, days=series["days"]).probs
            timings["series 30 dates x 256 px (s)"] = time.perf_counter() - t0
            methods[f"{name} series"] = masks(refined, stack)
        for method, m in methods.items():
            for i, labels in enumerate(series["labels"]):
                held = is_held_out("series", series["ids"][i])
                if clear_date(labels):
                    tally("series: clear dates (all)", method).add_clear(m[i])
                    if held:
                        tally("series: clear dates (held out)", method).add_clear(m[i])
                elif labels.usable:
                    tally("series: cloudy dates (all)", method).add_labelled(m[i], labels.mask)
                    if held:
                        tally("series: cloudy dates (held out)", method).add_labelled(
                            m[i], labels.mask
                        )
    for pair in pairs:
        for name in models:
            probs = single_probs(name, pair["stack"], pair["bands"])
            if probs is None:
                continue
            methods = {f"{name} single": masks(probs, pair["stack"])}
            if name == models[0]:
                refined = refine_series(pair["stack"], probs, pair["bands"]).probs
                methods[f"{name} series"] = masks(refined, pair["stack"])
            held = is_held_out("pairs", pair["id"])
            cirrus = (
                np.mean(cirrus_sky(BandPlanes(pair["stack"][1], pair["bands"]), ChangeRules()))
                > 0.5
            )
            for method, m in methods.items():
                for suffix in ("all", "held out") if held else ("all",):
                    tally(f"pairs: cloudy halves ({suffix})", method).add_labelled(
                        m[0], pair["labels"]
                    )
                    if not cirrus:
                        tally(f"pairs: clear halves ({suffix})", method).add_clear(m[1])
    out = {row: {method: t.scores() for method, t in by.items()} for row, by in tallies.items()}
    out["timing"] = {"refine_series": timings}
    return out


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    methods = sorted({m for row, by in results.items() if row != "timing" for m in by})
    for row, by in results.items():
        if row == "timing":
            continue
        keys = (
            ["false cloud %", "false shadow %"]
            if "clear" in row
            else ["cloud F1", "thin F1", "shadow F1"]
        )
        n = int(next(iter(by.values())).get("images", 0))
        print(f"\n{row}: {n} images")
        print(f"  {'method':32s}" + "".join(f"{k:>16s}" for k in keys))
        for method in methods:
            if method in by:
                vals = "".join(f"{by[method].get(k, float('nan')):16.3f}" for k in keys)
                print(f"  {method:32s}{vals}")
    for name, seconds in results["timing"]["refine_series"].items():
        print(f"\n{name}: {seconds:.1f}")


# ------------------------------------------------------------------------------ fit
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 30) -> np.ndarray:
    """Weights of an L2-regularised logistic regression (Newton steps; bias not penalised)."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-6)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


#: physics fixes the sign of the evidence (+1: for the class, -1: against, 0: free): a rise,
#: a flat rise, cirrus and brightening speak for cloud, snow against; darkening for shadow
CLOUD_SIGNS = (0, 1, 1, 1, 1, -1, 1, -1)
SHADOW_SIGNS = (0, 1, 1, 1, 0)


def fit_signed(x: np.ndarray, y: np.ndarray, signs: tuple[int, ...]) -> np.ndarray:
    """:func:`fit_logistic` with each weight's sign as ``signs`` says: a weight of the wrong
    sign is fixed at 0 and the others refitted, until none is wrong."""
    keep = np.ones(x.shape[1], bool)
    while True:
        w = np.zeros(x.shape[1])
        w[keep] = fit_logistic(x[:, keep], y)
        wrong = keep & (np.asarray(signs) * w < 0)
        if not wrong.any():
            return w
        keep &= ~wrong


def fit(data: Path, per_pair: int = 20000, seed: int = 0) -> dict[str, list[float]]:
    """Fit the cloud and shadow combinations on the labels of the training pairs."""
    pairs, _ = load(data)
    rng = np.random.default_rng(seed)
    rules = SeriesRules()
    cloud_x, cloud_y, shadow_x, shadow_y = [], [], [], []
    for pair in pairs:
        if is_held_out("pairs", pair["id"]):
            continue
        stack, bands, labels = pair["stack"], pair["bands"], pair["labels"]
        probs = single_probs("auto", stack, bands)
        assert probs is not None
        names = canonical_band_names(bands)
        reference, count = series_reference(stack, probs, names, rules)
        refd = count[0] >= 1
        ref = np.where(refd[None], reference[0], np.nan)
        truth_cloud = (labels == 1) | (labels == 2)
        cd, sd, _ = series_designs(stack[0], ref, probs[0], names, rules, cloud_mask=truth_cloud)
        labelled = (labels != NODATA) & refd & np.all(np.isfinite(cd), axis=0)
        pick = np.flatnonzero(labelled.ravel())
        pick = rng.choice(pick, min(per_pair, pick.size), replace=False) if pick.size else pick
        cloud_x.append(cd.reshape(cd.shape[0], -1)[:, pick].T)
        cloud_y.append(truth_cloud.ravel()[pick])
        not_cloud = labelled & ~truth_cloud & np.all(np.isfinite(sd), axis=0)
        pick = np.flatnonzero(not_cloud.ravel())
        pick = rng.choice(pick, min(per_pair, pick.size), replace=False) if pick.size else pick
        shadow_x.append(sd.reshape(sd.shape[0], -1)[:, pick].T)
        shadow_y.append((labels == 3).ravel()[pick])
    xc, yc = np.concatenate(cloud_x), np.concatenate(cloud_y).astype(float)
    xs, ys = np.concatenate(shadow_x), np.concatenate(shadow_y).astype(float)
    wc, ws = fit_signed(xc, yc, CLOUD_SIGNS), fit_signed(xs, ys, SHADOW_SIGNS)
    print(f"cloud: {int(yc.sum())} of {yc.size} px; shadow: {int(ys.sum())} of {ys.size} px")
    for names_, w in ((CLOUD_FEATURES, wc), (SHADOW_FEATURES, ws)):
        print("  " + ", ".join(f"{n} {v:+.2f}" for n, v in zip(names_, w, strict=True)))
    return {"cloud": [round(float(v), 2) for v in wc], "shadow": [round(float(v), 2) for v in ws]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--peers", action="store_true", help="add ukis-csmask single-date")
    parser.add_argument("--fit", action="store_true", help="refit the combination weights")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.fit:
        weights = fit(args.data)
        print(json.dumps(weights))
        return
    models = ["auto", "ukis-csmask"] if args.peers else ["auto"]
    results = evaluate(args.data, models)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
