"""Speed and peak memory of ``s2clouds predict`` on a 4096 x 4096 scene, beside s2cloudless.

The scene is built from real L1C reflectance (the s2cloudless test scene in
``../shared/data/real``) tiled to 4096 x 4096 at 10 m and written as a folder of 13 uint16
GeoTIFFs (generated in a temporary folder, never committed). Each run is a separate process
so that its peak RSS is its own. s2cloudless runs at its usual 160 m (10 bands averaged from
the same files, ``average_over=4, dilation_size=2``) in the same run.

    python benchmarks/predict_speed.py [--size 4096] [--keep DIR]

Prints megapixels per second (of the 10 m scene area) and peak RSS, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from s2clouds.bands import L1C_BANDS as L1C
from s2clouds.models.peers import S2CLOUDLESS_BANDS

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "s2cloudless_l1c_scene" / "input_arrays.npz"

S2CLOUDLESS_SCRIPT = """
import json, sys, time
import numpy as np, rasterio
from rasterio.enums import Resampling
from s2cloudless import S2PixelCloudDetector
folder, bands, size = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3])
t0 = time.perf_counter()
small = size * 10 // 160
stack = []
for b in bands:
    with rasterio.open(f"{folder}/{b}.tif") as ds:
        stack.append(ds.read(1, out_shape=(small, small), resampling=Resampling.average) / 10000.0)
image = np.stack(stack, axis=-1)[None].astype(np.float32)
detector = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)
mask = detector.get_cloud_masks(image)
print(json.dumps({"seconds": time.perf_counter() - t0, "cloud": float(mask.mean())}))
"""


def build_scene(folder: Path, size: int) -> Path:
    """Write 13 band GeoTIFFs of ``size`` x ``size`` at 10 m, tiled from the real L1C scene."""
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    real = np.load(REAL)["s2_im"][0]  # (856, 512, 13) TOA reflectance
    reps = (-(-size // real.shape[0]), -(-size // real.shape[1]), 1)
    tiled = np.tile(real, reps)[:size, :size]
    for i, band in enumerate(L1C):
        dn = np.round(tiled[..., i] * 10000).clip(1, 65535).astype(np.uint16)
        profile = dict(
            driver="GTiff",
            height=size,
            width=size,
            count=1,
            dtype="uint16",
            crs="EPSG:32632",
            transform=Affine(10, 0, 600000, 0, -10, 5200000),
            nodata=0,
            tiled=True,
            blockxsize=512,
            blockysize=512,
            compress="deflate",
        )
        with rasterio.open(folder / f"{band}.tif", "w", **profile) as ds:
            ds.write(dn, 1)
    return folder


WRAPPER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "p = subprocess.run(sys.argv[1:]); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(p.returncode)"
)


def run_measured(argv: list[str]) -> tuple[float, float]:
    """Run a command in a fresh wrapper process; return (wall seconds, its peak RSS in MiB)."""
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}\n{proc.stderr}")
    seconds, rss_kib = proc.stderr.strip().splitlines()[-1].split()
    return float(seconds), float(rss_kib) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated scene here")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="s2clouds-bench-"))
    scene = build_scene(work / "scene", args.size)
    megapixels = args.size * args.size / 1e6
    s2clouds = [sys.executable, "-m", "s2clouds.cli.main", "predict", str(scene), "--quiet"]
    runs = {
        "s2clouds physical, 7 of 13 bands, 20 m": s2clouds
        + ["-o", str(work / "m20.tif"), "--resolution", "20"],
        "s2clouds physical, 7 of 13 bands, 10 m": s2clouds + ["-o", str(work / "m10.tif")],
        "s2clouds physical, 4 bands, 10 m": s2clouds
        + ["-o", str(work / "m4.tif"), "--bands", "B02,B03,B04,B08"],
        "s2cloudless 1.x, 10 bands, 160 m": [
            sys.executable,
            "-c",
            S2CLOUDLESS_SCRIPT,
            str(scene),
            ",".join(S2CLOUDLESS_BANDS),
            str(args.size),
        ],
    }
    results = {}
    for name, argv in runs.items():
        seconds, rss = run_measured(argv)
        results[name] = {"seconds": seconds, "mp_per_s": megapixels / seconds, "peak_rss_mib": rss}
    peer = results["s2cloudless 1.x, 10 bands, 160 m"]
    print(f"scene {args.size} x {args.size} px at 10 m ({megapixels:.1f} MP), 13 L1C bands")
    print(f"{'run':40s} {'MP/s':>8s} {'peak RSS MiB':>13s} {'speed vs s2cloudless':>21s}")
    for name, r in results.items():
        print(
            f"{name:40s} {r['mp_per_s']:8.2f} {r['peak_rss_mib']:13.0f} {r['mp_per_s'] / peer['mp_per_s']:20.2f}x"
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
