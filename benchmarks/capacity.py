"""Capacity against generalisation and speed: the 13-band pixel model at several sizes.

    python benchmarks/capacity.py [--sizes 20x7,50x31,120x63]

For each size (boosting rounds x leaves per tree), the 13-band model is rebuilt with the
shipped recipe (scripts/build_pixel_models.py, into a temporary folder), then scored on the
held-out 13-band images (false cloud and shadow on clear halves, agreement with the change
labels; see benchmarks/accuracy.py) and timed on a 2048 px real L1C scene against
ukis-csmask in the same run (benchmarks/model_speed.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy import DATA, agreement, clear_images, false_rates, labelled_images  # noqa: E402
from model_speed import real_scene, time_model  # noqa: E402

from s2clouds.bands import L1C_BANDS  # noqa: E402

NAME = "s2clouds-pixel-l1c13"


def build(rounds: int, leaves: int, out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            str(HERE.parent / "scripts" / "build_pixel_models.py"),
            "--models",
            NAME,
            "--rounds",
            str(rounds),
            "--leaves",
            str(leaves),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out / f"{NAME}.lgbm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20x7,50x31,120x63")
    parser.add_argument("--size", type=int, default=2048, help="speed test scene side (px)")
    args = parser.parse_args()
    clear = [i for i in clear_images(DATA, False) if "B10" in i.bands]
    labelled = list(labelled_images(DATA))
    image = real_scene(args.size)
    peer = (
        args.size**2
        / 1e6
        / time_model("ukis-csmask@native", image, ("B02", "B03", "B04", "B08"), 2)
    )
    print(
        f"{'rounds x leaves':16s} {'MB':>5s} {'false cloud %':>13s} {'false shadow %':>14s} "
        f"{'cloud F1':>8s} {'shadow F1':>9s} {'thin F1':>7s} {'MP/s':>6s} {'vs ukis':>7s}"
    )
    for size in args.sizes.split(","):
        rounds, leaves = (int(v) for v in size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            path = build(rounds, leaves, Path(tmp))
            model = str(path)
            rates = false_rates([model], clear)
            totals = [sum(d[model][k] for d in rates.values()) for k in range(3)]
            scores = agreement([model], labelled)[model]
            speed = args.size**2 / 1e6 / time_model(model, image, L1C_BANDS, 2)
            print(
                f"{size:16s} {path.stat().st_size / 1e6:5.2f} "
                f"{100 * totals[0] / totals[2]:13.2f} {100 * totals[1] / totals[2]:14.2f} "
                f"{scores['cloud F1']:8.3f} {scores['shadow F1']:9.3f} {scores['thin F1']:7.3f} "
                f"{speed:6.2f} {speed / peer:6.1f}x"
            )


if __name__ == "__main__":
    main()
