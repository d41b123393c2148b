"""How much reading JPEG 2000 resolution levels moves the masks of real cloudy scenes.

The 20 m pixel models on a SAFE product read the 10 m bands from the files' first JPEG 2000
resolution level (a wavelet low-pass, a quarter of the decoding) unless ``--exact-reads``
asks for exact block means of every decoded 10 m pixel. This writes each real cloudy image
of ``../shared/data/real/sen12mscr/pairs`` (13 L1C bands, 256 px at 10 m) as an L1C product
in the published layout (bands block-averaged to their native 10, 20 and 60 m, 252 px at
10 m, lossless JPEG 2000 in 128 px tiles), masks it both ways with the default model and
prints, per image and over all, the share of pixels whose class differs and the share of
cloud (thick + thin) and shadow each way.

    python benchmarks/level_reads.py [--limit 48]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_safe import L1C_BANDS, fixture_writer  # noqa: E402

PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "sen12mscr" / "pairs"
SIZE = 252  # px at 10 m: a multiple of 6
NATIVE = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip


def safe_of(image: Path, folder: Path) -> Path:
    """``image`` (13 bands at 10 m) written as an L1C product with bands at native
    resolution."""
    import rasterio

    with rasterio.open(image) as ds:
        data = ds.read()[:, :SIZE, :SIZE].astype(np.float64)

    def band_dn(band: str, resolution: int) -> np.ndarray:
        factor = resolution // 10
        side = SIZE // factor
        plane = data[L1C_BANDS.index(band)].reshape(side, factor, side, factor)
        return np.rint(plane.mean(axis=(1, 3))).astype(np.uint16)

    writer = fixture_writer()
    return Path(
        writer.write_safe(
            folder, baseline="02.14", size_10m=SIZE, band_dn=band_dn,
            jp2_options={"BLOCKXSIZE": 128, "BLOCKYSIZE": 128},
        )
    )  # fmt: skip


def masks(safe: Path, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """The default model's masks of ``safe``: from resolution levels, and exact."""
    import rasterio

    from s2clouds.inference.options import PredictOptions, RunOptions
    from s2clouds.inference.predict import predict

    out = []
    for exact in (False, True):
        path = work / f"mask_{exact}.tif"
        options = PredictOptions(run=RunOptions(exact_reads=exact), progress=False)
        predict(safe, path, options)
        with rasterio.open(path) as ds:
            out.append(ds.read(1))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=48, help="cloudy images to use")
    args = parser.parse_args()
    images = sorted(PAIRS.glob("*/cloudy.tif"))[: args.limit]
    if not images:
        raise SystemExit(f"no cloudy images under {PAIRS}")
    moved = total = 0
    shares = np.zeros((2, 2))
    print(f"{'image':40s} {'moved %':>8s} {'cloud % lv/ex':>14s} {'shadow % lv/ex':>15s}")
    for image in images:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            levels, exact = masks(safe_of(image, work), work)
        valid = (levels != 255) & (exact != 255)
        diff = int(np.count_nonzero(levels[valid] != exact[valid]))
        moved, total = moved + diff, total + int(valid.sum())
        cloud = [100 * np.isin(m[valid], (1, 2)).mean() for m in (levels, exact)]
        shadow = [100 * (m[valid] == 3).mean() for m in (levels, exact)]
        shares += np.array([cloud, shadow])
        print(
            f"{image.parent.name:40s} {100 * diff / valid.sum():8.2f} "
            f"{cloud[0]:6.1f}/{cloud[1]:<6.1f} {shadow[0]:7.1f}/{shadow[1]:<6.1f}"
        )
    n = len(images)
    print(
        f"all {n} images: {100 * moved / total:.2f} % of the pixels change class; cloud "
        f"{shares[0, 0] / n:.1f} % (levels) vs {shares[0, 1] / n:.1f} % (exact), shadow "
        f"{shares[1, 0] / n:.1f} % vs {shares[1, 1] / n:.1f} %"
    )


if __name__ == "__main__":
    main()
