"""``s2clouds composite`` at scale, and on real data, each side by side with a plain median.

Scale (synthetic): for 10, 30 and 60 acquisitions of a ``--size`` px grid (default 4096; 4
bands B02 B03 B04 B08, uint16 DN, vegetation/soil texture under random cloud fields, written
to a temporary folder), run in separate processes:

* ``s2clouds composite --workers 0`` (windows streamed; memory ~ block^2 x inputs);
* a naive per-band ``numpy.median`` over the whole stack read into memory (what a script
  without windows does; it needs T x C x H x W values at once).

Seconds and peak RSS (``VmHWM`` of each process; ``ru_maxrss`` would count the parent's
RSS at fork) are printed in a table with the ratios.

Real data (``--real``): the 30-date SEN12MS-CR-TS series in shared/data/real (13-band L1C,
central Italy, 2018): the composite (default model and scorer, methods best and median) and
a plain median of all 30 dates; residual cloud of each judged by an independent masker,
s2cloudless (share of pixels whose most probable class is cloud), and by the physical
SEN12MS score as a second opinion.

Methods side by side (``--methods``): on the same real series, the merge rules ``best``,
``medoid`` and the SEN12MS paper's ``ranked`` merge, each with the default scorer
(``probability``, default model) and the paper's own ``sen12ms`` quality score (cloud and
shadow, no model), over all 30 dates and over each 5-date group; the residual cloud of each
by s2cloudless and the physical score, and a figure of the composites (``--figure PNG``).

    python benchmarks/composite.py [--size 4096] [--counts 10,30,60] [--score probability]
                                   [--block 512] [--real] [--methods] [--figure PNG]
                                   [--no-scale]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "sen12mscr" / "timeseries"
BANDS = ("B02", "B03", "B04", "B08")
CHILD_COMPOSITE = """
import sys, time, json
def peak_mb():
    # VmHWM: this process's own peak RSS (ru_maxrss would include the parent's at fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from s2clouds.cli.main import main
start = time.perf_counter()
try:
    main(sys.argv[1:])
finally:
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "peak_mb": peak_mb()}))
"""
CHILD_MEDIAN = """
import sys, time, json
def peak_mb():
    # VmHWM: this process's own peak RSS (ru_maxrss would include the parent's at fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
import numpy as np, rasterio
start = time.perf_counter()
paths, out = sys.argv[1:-1], sys.argv[-1]
stack = []
for p in paths:
    with rasterio.open(p) as ds:
        stack.append(ds.read())
        profile = ds.profile
stack = np.stack(stack)
median = np.median(stack, axis=0)
with rasterio.open(out, "w", **profile) as ds:
    ds.write(np.rint(median).astype(profile["dtype"]))
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": peak_mb()}))
"""


def smooth_field(rng: np.random.Generator, size: int, cell: int = 64) -> np.ndarray:
    """A smooth random field in [0, 1] (bilinear upsampling of coarse noise)."""
    from scipy import ndimage

    coarse = rng.random((size // cell + 2, size // cell + 2))
    fine = ndimage.zoom(coarse, cell, order=1)[:size, :size]
    return fine.astype(np.float32)


def write_inputs(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """``count`` synthetic acquisitions (see the module docstring), written strip-free (one
    field per acquisition, size^2 float32 at a time)."""
    import datetime as dt

    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    surface = smooth_field(rng, size, 128)
    base = np.array([0.04, 0.07, 0.05, 0.30], np.float32)[:, None, None]
    soil = np.array([0.12, 0.14, 0.17, 0.26], np.float32)[:, None, None]
    clear = base + (soil - base) * surface[None]
    paths = []
    for k in range(count):
        cloud = np.clip((smooth_field(rng, size, 96) - 0.55) * 4, 0, 1)  # ~30 % cover
        image = clear * (1 - cloud) + 0.6 * cloud + rng.normal(0, 0.004, (4, size, size))
        data = np.clip(image * 10000, 1, 65535).astype(np.uint16)
        date = dt.date(2021, 1, 1) + dt.timedelta(days=5 * k)
        path = folder / f"S2_{date:%Y%m%d}.tif"
        profile = {
            "driver": "GTiff",
            "height": size,
            "width": size,
            "count": 4,
            "dtype": "uint16",
            "crs": "EPSG:32633",
            "transform": Affine(10, 0, 500000, 0, -10, 5000000),
            "nodata": 0,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
        }
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(data)
            ds.descriptions = BANDS
            ds.update_tags(ACQUISITION_DATE=date.isoformat())
        paths.append(path)
    return paths


def run_child(code: str, args: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def scale(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.counts.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp)
        all_paths = write_inputs(folder, max(counts), args.size)
        for count in counts:
            paths = [str(p) for p in all_paths[:count]]
            ours = run_child(
                CHILD_COMPOSITE,
                [
                    "composite",
                    *paths,
                    "-o",
                    str(folder / f"c{count}.tif"),
                    "--workers",
                    str(args.workers),
                    "--block",
                    str(args.block),
                    "--score",
                    args.score,
                    "--method",
                    args.method,
                    "--quiet",
                    "--no-quicklook",
                ],
            )
            naive = run_child(CHILD_MEDIAN, [*paths, str(folder / f"m{count}.tif")])
            rows.append((count, ours, naive))
            print(f"  {count} inputs done", flush=True)
    print(
        f"\nScale: {args.size} x {args.size} px, 4 bands uint16, method {args.method}, score "
        f"{args.score}, block {args.block}, workers {args.workers}"
    )
    print(
        f"{'inputs':>6} | {'composite s':>11} | {'peak MB':>8} | {'naive median s':>14} | "
        f"{'peak MB':>8} | {'time ratio':>10} | {'memory ratio':>12}"
    )
    for count, ours, naive in rows:
        print(
            f"{count:>6} | {ours['seconds']:>11.1f} | {ours['peak_mb']:>8.0f} | "
            f"{naive['seconds']:>14.1f} | {naive['peak_mb']:>8.0f} | "
            f"{ours['seconds'] / naive['seconds']:>10.2f} | "
            f"{ours['peak_mb'] / naive['peak_mb']:>12.2f}"
        )


def residual_cloud(path: Path) -> dict[str, float]:
    """Share of valid pixels of the composite at ``path`` that s2cloudless (and the physical
    score) call cloud."""
    from s2clouds.io.scenes import read_scene
    from s2clouds.models.base import ModelContext
    from s2clouds.models.registry import get_model

    scene = read_scene(path, level="L1C")
    image = scene.read()
    valid = np.all(np.isfinite(image), axis=0)
    out = {"no_data": float(1 - valid.mean())}
    context = ModelContext.of_scene(scene)
    for judge in ("s2cloudless", "physical"):
        model = get_model(judge, scene.bands, "L1C")
        sub = image[[scene.bands.index(b) for b in model.bands]]
        probs = model.predict_proba(np.nan_to_num(sub, nan=0.0), context)
        cls = np.argmax(probs, axis=0)
        out[judge] = float(np.isin(cls, (1, 2))[valid].mean()) if valid.any() else float("nan")
    return out


def _plain_median(files: list[Path], out: Path) -> None:
    import rasterio

    stack = []
    for f in files:
        with rasterio.open(f) as ds:
            stack.append(ds.read())
            profile, names = ds.profile, ds.descriptions
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(np.rint(np.median(np.stack(stack), axis=0)).astype("uint16"))
        ds.descriptions = names


def _judged(files: list[Path], tmp: Path, tag: str) -> dict[str, dict[str, float]]:
    """Residual cloud of the composites (best, median; default model) and the plain median."""
    rows: dict[str, dict[str, float]] = {}
    for method in ("best", "median"):
        out = tmp / f"{tag}-{method}.tif"
        run_child(
            CHILD_COMPOSITE,
            [
                "composite",
                *map(str, files),
                "-o",
                str(out),
                "--workers",
                "0",
                "--method",
                method,
                "--quiet",
            ],
        )
        summary = json.loads(out.with_suffix(".json").read_text())
        rows[f"composite {method}"] = {
            **residual_cloud(out),
            "no_clear": summary["share_without_clear_observation"],
        }
    plain = tmp / f"{tag}-plain.tif"
    _plain_median(files, plain)
    rows["plain median"] = {**residual_cloud(plain), "no_clear": 0.0}
    return rows


def _shape(path: Path) -> str:
    """``13 bands, 256 x 256 px`` of a raster."""
    import rasterio

    with rasterio.open(path) as ds:
        return f"{ds.count} bands, {ds.height} x {ds.width} px"


def real(args: argparse.Namespace) -> None:
    folder = sorted(p for p in REAL.iterdir() if p.is_dir())[0]
    files = sorted(folder.glob("*.tif"))
    groups = {f"all {len(files)} dates": files}
    groups.update({f"dates {i + 1}-{i + 5}": files[i : i + 5] for i in range(0, len(files), 5)})
    table = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for tag, group in groups.items():
            table[tag] = _judged(group, Path(tmp), tag.replace(" ", "_"))
    print(
        f"\nReal data: {folder.name}, {len(files)} dates, {_shape(files[0])}; residual "
        "cloud = share of valid composite pixels an independent masker calls cloud"
    )
    print(
        f"{'dates':<14} | {'composite':<17} | {'s2cloudless':>11} | {'physical':>8} | "
        f"{'no clear obs':>12}"
    )
    means: dict[str, list[float]] = {}
    for tag, rows in table.items():
        for name, res in rows.items():
            print(
                f"{tag:<14} | {name:<17} | {100 * res['s2cloudless']:>10.2f}% | "
                f"{100 * res['physical']:>7.2f}% | {100 * res['no_clear']:>11.2f}%"
            )
            if not tag.startswith("all "):
                means.setdefault(name, []).append(res["s2cloudless"])
    for name, values in means.items():
        print(
            f"mean over the {len(values)} 5-date groups, {name}: s2cloudless cloud "
            f"{100 * float(np.mean(values)):.2f}%"
        )


METHODS = ("best", "medoid", "ranked")
SCORERS = ("probability", "sen12ms")


def _composite(files: list[Path], out: Path, method: str, scorer: str) -> dict[str, float]:
    run_child(
        CHILD_COMPOSITE,
        [
            "composite",
            *map(str, files),
            "-o",
            str(out),
            "--workers",
            "0",
            "--method",
            method,
            "--score",
            scorer,
            "--quiet",
        ],
    )
    summary = json.loads(out.with_suffix(".json").read_text())
    return {**residual_cloud(out), "no_clear": summary["share_without_clear_observation"]}


def _true_colour(path: Path) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the composite's true colour (no data black)."""
    import rasterio

    from s2clouds.viz import TRUE_COLOUR_BANDS, rgb_quicklook

    with rasterio.open(path) as ds:
        names = list(ds.descriptions)
        rgb = ds.read([names.index(b) + 1 for b in TRUE_COLOUR_BANDS]).astype(np.float32)
    rgb[rgb == 0] = np.nan
    return np.asarray(rgb_quicklook(rgb / 10000.0, TRUE_COLOUR_BANDS, stretch="fixed"))


def methods_side_by_side(args: argparse.Namespace) -> None:
    """``best``, ``medoid`` and ``ranked`` on the real series (see the module docstring)."""
    folder = sorted(p for p in REAL.iterdir() if p.is_dir())[0]
    files = sorted(folder.glob("*.tif"))
    groups = {f"all {len(files)}": files}
    groups.update({f"{i + 1}-{i + 5}": files[i : i + 5] for i in range(0, len(files), 5)})
    table: dict[tuple[str, str, str], dict[str, float]] = {}
    pictures: dict[tuple[str, str, str], np.ndarray] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for tag, group in groups.items():
            for scorer in SCORERS:
                for method in METHODS:
                    out = Path(tmp) / f"{tag.replace(' ', '_')}-{scorer}-{method}.tif"
                    table[(tag, scorer, method)] = _composite(group, out, method, scorer)
                    pictures[(tag, scorer, method)] = _true_colour(out)
            print(f"  dates {tag} done", flush=True)
    print(
        f"\nMethods side by side: {folder.name}, {len(files)} dates; residual cloud = share of "
        "valid composite pixels an independent masker calls cloud"
    )
    print(
        f"{'dates':<7} | {'scorer':<11} | {'method':<6} | {'s2cloudless':>11} | "
        f"{'physical':>8} | {'no clear obs':>12}"
    )
    means: dict[tuple[str, str], list[float]] = {}
    for (tag, scorer, method), res in table.items():
        print(
            f"{tag:<7} | {scorer:<11} | {method:<6} | {100 * res['s2cloudless']:>10.2f}% | "
            f"{100 * res['physical']:>7.2f}% | {100 * res['no_clear']:>11.2f}%"
        )
        if not tag.startswith("all"):
            means.setdefault((scorer, method), []).append(res["s2cloudless"])
    for (scorer, method), values in means.items():
        print(
            f"mean over the {len(values)} 5-date groups, {scorer} {method}: s2cloudless cloud "
            f"{100 * float(np.mean(values)):.2f}%"
        )
    if args.figure:
        _figure(pictures, list(groups), Path(args.figure))


def _figure(pictures: dict[tuple[str, str, str], np.ndarray], tags: list[str], path: Path) -> None:
    """One row per date group, one column per scorer and method."""
    from matplotlib.figure import Figure

    columns = [(scorer, method) for scorer in SCORERS for method in METHODS]
    figure = Figure(figsize=(2.0 * len(columns), 2.1 * len(tags)), layout="constrained")
    axes = figure.subplots(len(tags), len(columns), squeeze=False)
    for r, tag in enumerate(tags):
        for c, (scorer, method) in enumerate(columns):
            ax = axes[r][c]
            ax.imshow(pictures[(tag, scorer, method)], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{method}\n({scorer})", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"dates {tag}", fontsize=9)
    figure.suptitle("SEN12MS-CR-TS ROIs2017_146_p0 (2018): composites by merge rule and score")
    figure.savefig(path, dpi=80)
    _palette_png(path)
    print(f"wrote {path}")


def _palette_png(path: Path) -> None:
    """Rewrite the PNG at ``path`` with a 256-colour palette (a quarter of the bytes)."""
    from PIL import Image

    with Image.open(path) as picture:
        small = picture.convert("RGB").quantize(256)
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--counts", default="10,30,60")
    parser.add_argument("--score", default="probability")
    parser.add_argument("--method", default="best")
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="folder for the temporary inputs")
    parser.add_argument("--real", action="store_true", help="also run the real-data check")
    parser.add_argument(
        "--methods",
        action="store_true",
        help="best, medoid and ranked side by side on the real series",
    )
    parser.add_argument("--figure", default=None, help="PNG of the --methods composites")
    parser.add_argument("--no-scale", action="store_true", help="skip the synthetic scale run")
    args = parser.parse_args()
    if not args.no_scale:
        scale(args)
    if args.real:
        real(args)
    if args.methods:
        methods_side_by_side(args)


if __name__ == "__main__":
    main()
