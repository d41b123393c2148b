"""A whole Sentinel-2 tile through ``s2clouds predict``: seconds, MP/s, peak memory, scaling.

Builds a synthetic 10980 x 10980 px, 13-band L1C COG at 10 m (uint16 DN; realistic TOA
reflectance spectra of vegetation, soil and water under smooth random thick and thin cloud
fields with their shadows; generated strip by strip in a temporary folder, never committed),
then runs, each in its own process:

* ``s2clouds predict`` with the physical model in this process (``--workers 0``) and on a local
  Dask cluster of 1 and 2 worker processes (the speed-up), and with the default learned model
  (the registry's default when it is not the physical model);
* ukis-csmask at 10 m (through the s2clouds registry, ``--model ukis-csmask@native``) on a 4096 x 4096 crop,
  its time scaled up to the tile's area (same 10 m output resolution);
* s2cloudless 1.x natively at 160 m (10 bands averaged on read, ``average_over=4,
  dilation_size=2``) on the whole tile.

Peak memory: ``RUSAGE_CHILDREN`` gives the largest single process (client or one worker); a
sampler also sums the RSS of the whole process tree (client + scheduler + workers) every 0.2 s.
Give ``--size`` several times (e.g. 4096 and 8192, same ``--block``) to see that memory follows
the window size, not the scene size.

    python benchmarks/full_tile.py [--size 10980] [--size 4096 ...] [--block 1024] [--keep DIR]
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

from s2clouds.bands import L1C_BANDS
from s2clouds.models.peers import S2CLOUDLESS_BANDS

TILE = 10980  # px: a Sentinel-2 tile at 10 m
UKIS_CROP = 4096
STRIP = 512
#: TOA reflectance of the surfaces and of thick cloud, in L1C_BANDS order (B01 .. B12)
SPECTRA = {
    "vegetation": (0.13, 0.10, 0.08, 0.05, 0.10, 0.25, 0.30, 0.32, 0.33, 0.10, 0.005, 0.18, 0.09),
    "soil": (0.15, 0.13, 0.14, 0.18, 0.21, 0.23, 0.25, 0.27, 0.28, 0.09, 0.006, 0.33, 0.28),
    "water": (0.12, 0.09, 0.06, 0.04, 0.03, 0.02, 0.02, 0.02, 0.02, 0.01, 0.002, 0.01, 0.005),
    "cloud": (0.55, 0.55, 0.55, 0.56, 0.57, 0.58, 0.58, 0.58, 0.58, 0.35, 0.15, 0.45, 0.35),
}
SHADOW_SHIFT = (60, -40)  # px (rows, cols) from a cloud to its shadow: sun in the north-east

S2CLOUDLESS_SCRIPT = """
import json, sys, time
import numpy as np, rasterio
from rasterio.enums import Resampling
from s2cloudless import S2PixelCloudDetector
path, indexes, size = sys.argv[1], [int(i) for i in sys.argv[2].split(',')], int(sys.argv[3])
t0 = time.perf_counter()
small = size * 10 // 160
with rasterio.open(path) as ds:
    data = ds.read(indexes, out_shape=(len(indexes), small, small), resampling=Resampling.average)
image = (np.moveaxis(data, 0, -1)[None] / 10000.0).astype(np.float32)
detector = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)
mask = detector.get_cloud_masks(image)
print(json.dumps({"seconds": time.perf_counter() - t0, "cloud": float(mask.mean())}))
"""

WRAPPER = """
import json, resource, subprocess, sys, threading, time
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


# --------------------------------------------------------------------------- synthetic tile
def smooth_field(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Coarse uniform noise (one value per ``cell`` px), 3x3-averaged: upsample per strip."""
    from scipy import ndimage

    coarse = rng.random((size // cell + 3, size // cell + 3)).astype(np.float32)
    return ndimage.uniform_filter(coarse, 3, mode="reflect")


#: tiled, band-interleaved GeoTIFF options shared by the staging file and the final COG
BAND_PLANE_TILES = dict(
    tiled=True,
    blockxsize=512,
    blockysize=512,
    compress="deflate",
    zlevel=1,
    predictor=2,
    interleave="band",
    bigtiff="yes",
)


def upsample_rows(coarse: np.ndarray, cell: int, rows: slice, width: int) -> np.ndarray:
    """Bilinear values of ``coarse`` (one sample per ``cell`` px) for image ``rows``."""
    from scipy import ndimage

    yy = np.arange(rows.start, rows.stop, dtype=np.float32) / cell
    xx = np.arange(width, dtype=np.float32) / cell
    grid_y, grid_x = np.meshgrid(yy, xx, indexing="ij")
    return ndimage.map_coordinates(coarse, [grid_y, grid_x], order=1, mode="nearest")


def synthetic_strip(
    fields: dict[str, np.ndarray], rows: slice, width: int, rng: np.random.Generator
) -> np.ndarray:
    """TOA reflectance (13, h, width) of image ``rows``: surfaces, cloud and shadow."""
    surface = upsample_rows(fields["surface"], 256, rows, width)
    spectra = {k: np.asarray(v, np.float32)[:, None, None] for k, v in SPECTRA.items()}
    veg_share = np.clip((surface - 0.35) / 0.2, 0, 1)[None]
    land = veg_share * spectra["vegetation"] + (1 - veg_share) * spectra["soil"]
    image = np.where((surface < 0.3)[None], spectra["water"], land)
    shifted = slice(rows.start - SHADOW_SHIFT[0], rows.stop - SHADOW_SHIFT[0])
    cloud = _opacity(upsample_rows(fields["cloud"], 128, rows, width))
    shade = _opacity(upsample_rows(fields["cloud"], 128, shifted, width + 200))
    shade = shade[:, 200 + SHADOW_SHIFT[1] : 200 + SHADOW_SHIFT[1] + width]
    image = image * (1 - 0.7 * shade)[None]
    image = (1 - cloud)[None] * image + cloud[None] * spectra["cloud"]
    image += rng.normal(0, 0.004, image.shape).astype(np.float32)
    return np.clip(image, 0.0001, 1.5)


def _opacity(field: np.ndarray) -> np.ndarray:
    """Cloud opacity 0-1 from a smooth field: ~25 % of the area cloudy, thin at the edges."""
    return np.clip((field - 0.55) / 0.12, 0.0, 1.0)


def build_tile(path: Path, size: int, seed: int = 0) -> Path:
    """Write the synthetic ``size`` x ``size`` 13-band uint16 COG (tiled, deflate, overviews)."""
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.shutil import copy as rio_copy

    rng = np.random.default_rng(seed)
    fields = {
        "surface": smooth_field(rng, size + 512, 256),
        "cloud": smooth_field(rng, size + 512, 128),
    }
    stage = path.with_suffix(".stage.tif")
    profile = dict(
        driver="GTiff",
        height=size,
        width=size,
        count=len(L1C_BANDS),
        dtype="uint16",
        crs="EPSG:32632",
        transform=Affine(10, 0, 600000, 0, -10, 5300040),
        nodata=0,
        **BAND_PLANE_TILES,
    )
    with rasterio.open(stage, "w", **profile) as ds:
        for row in range(0, size, STRIP):
            rows = slice(row, min(size, row + STRIP))
            strip = synthetic_strip(fields, rows, size, rng)
            dn = np.round(strip * 10000).astype(np.uint16)
            ds.write(dn, window=((rows.start, rows.stop), (0, size)))
        for i, band in enumerate(L1C_BANDS, start=1):
            ds.set_band_description(i, band)
        ds.update_tags(MEAN_SOLAR_ZENITH_ANGLE="35.0", MEAN_SOLAR_AZIMUTH_ANGLE="135.0")
    with rasterio.open(stage, "r+") as ds:
        ds.build_overviews([2, 4, 8, 16], Resampling.average)
    # a COG (tiles, overviews before the data) with one band per plane, like the single-band
    # files of a real product; GDAL 3.10's COG driver can only interleave pixels
    rio_copy(stage, path, driver="GTiff", copy_src_overviews=True, **BAND_PLANE_TILES)
    stage.unlink()
    return path


def crop(source: Path, path: Path, size: int) -> Path:
    """The top-left ``size`` x ``size`` px of ``source`` as a GeoTIFF (same bands and tags)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(source) as src:
        window = Window(0, 0, size, size)
        profile = src.profile | {
            "driver": "GTiff",
            "height": size,
            "width": size,
            "transform": src.window_transform(window),
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
            dst.update_tags(**src.tags())
    return path


# --------------------------------------------------------------------------- measuring
def run_measured(argv: list[str]) -> dict[str, float]:
    """Run ``argv`` in its own process; seconds, largest process RSS and process-tree RSS (MiB)."""
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


def s2clouds_argv(scene: Path, out: Path, *extra: str) -> list[str]:
    entry = "import sys; from s2clouds.cli.main import main; sys.exit(main())"
    return [sys.executable, "-c", entry, "predict", str(scene), "-o", str(out), "--quiet", *extra]


def learned_model() -> str | None:
    """The default model's name when it is a learned one (not the physical scores)."""
    from s2clouds.models.registry import DEFAULT_MODEL

    return None if DEFAULT_MODEL == "physical" else DEFAULT_MODEL


def tile_runs(scene: Path, work: Path, size: int, block: int) -> dict[str, list[str]]:
    """The s2clouds runs on one scene size."""
    common = ("--block", str(block), "--no-dashboard")
    runs = {
        f"physical {size}px, this process": s2clouds_argv(
            scene, work / "p0.tif", *common, "--workers", "0"
        ),
        f"physical {size}px, 1 worker": s2clouds_argv(
            scene, work / "p1.tif", *common, "--workers", "1"
        ),
        f"physical {size}px, 2 workers": s2clouds_argv(
            scene, work / "p2.tif", *common, "--workers", "2"
        ),
    }
    learned = learned_model()
    if learned is not None:
        runs[f"{learned} {size}px, this process"] = s2clouds_argv(
            scene, work / "l0.tif", *common, "--workers", "0", "--model", learned
        )
        runs[f"{learned} {size}px, 2 workers"] = s2clouds_argv(
            scene, work / "l2.tif", *common, "--workers", "2", "--model", learned
        )
    return runs


def peer_runs(scene: Path, work: Path, size: int) -> dict[str, tuple[list[str], int]]:
    """Peer runs and the side (px) of the area they cover, for scaling to the tile."""
    crop_size = min(UKIS_CROP, size)
    cropped = crop(scene, work / "crop.tif", crop_size)
    indexes = ",".join(str(L1C_BANDS.index(b) + 1) for b in S2CLOUDLESS_BANDS)
    return {
        f"ukis-csmask {crop_size}px crop, 2 workers": (
            s2clouds_argv(cropped, work / "u.tif", "--model", "ukis-csmask@native", "--workers", "2"),
            crop_size,
        ),
        "s2cloudless at 160 m, whole tile": (
            [sys.executable, "-c", S2CLOUDLESS_SCRIPT, str(scene), indexes, str(size)],
            size,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="tile side in px (repeatable)")
    parser.add_argument("--block", type=int, default=1024, help="s2clouds window edge (px)")
    parser.add_argument("--no-peers", action="store_true", help="skip ukis-csmask, s2cloudless")
    parser.add_argument("--keep", type=Path, default=None, help="keep generated files here")
    args = parser.parse_args()
    sizes = args.size or [TILE]
    work = Path(args.keep or tempfile.mkdtemp(prefix="s2clouds-tile-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    try:
        for size in sizes:
            scene = work / f"tile_{size}.tif"
            if not (args.keep and scene.exists()):  # a kept tile is reused (6 min to build)
                build_tile(scene, size)
            for name, argv in tile_runs(scene, work, size, args.block).items():
                results[name] = run_measured(argv) | {"area_mp": size * size / 1e6}
            if not args.no_peers and size == max(sizes):
                for name, (argv, side) in peer_runs(scene, work, size).items():
                    results[name] = run_measured(argv) | {"area_mp": side * side / 1e6}
            if args.keep is None:
                scene.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results, max(sizes))


def report(results: dict[str, dict[str, float]], tile: int) -> None:
    """One table: MP/s, the time for a whole 10980 px tile at that speed, and memory."""
    tile_mp = TILE * TILE / 1e6
    print(
        f"{'run':44s} {'s':>7s} {'MP/s':>7s} {'s/tile':>7s} {'max proc MiB':>12s} {'tree MiB':>9s}"
    )
    for name, r in results.items():
        rate = r["area_mp"] / r["seconds"]
        print(
            f"{name:44s} {r['seconds']:7.1f} {rate:7.2f} {tile_mp / rate:7.1f} "
            f"{r['largest_rss_mib']:12.0f} {r['tree_rss_mib']:9.0f}"
        )
    rates = {name: r["area_mp"] / r["seconds"] for name, r in results.items()}
    one = next((v for k, v in rates.items() if k.endswith(f"{tile}px, 1 worker")), None)
    two = next((v for k, v in rates.items() if k.endswith(f"{tile}px, 2 workers")), None)
    ukis = next((v for k, v in rates.items() if k.startswith("ukis-csmask")), None)
    if one and two:
        print(f"speed-up 2 workers vs 1: {two / one:.2f}x")
    if two and ukis:
        print(f"physical (2 workers) vs ukis-csmask throughput at 10 m: {two / ukis:.1f}x")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
