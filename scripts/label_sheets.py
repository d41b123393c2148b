"""Write sheets of change-label overlays so that a person can check the derived labels.

    python scripts/label_sheets.py [--data ../shared/data/real] [--out label_sheets] [--rows 8]

One PNG per ``--rows`` images: the cloudy image, its reference (the clear partner of a
SEN12MS-CR pair, or the per-pixel temporal reference of a SEN12MS-CR-TS date) and the labels
over the cloudy image (white thick cloud, cyan thin cloud, brown shadow, green clear,
uncoloured ignore). Pairs the labeller cannot use are listed with the reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from s2clouds.datasets.sen12mscr import SEN12MSCRPairs, SEN12MSCRSeries
from s2clouds.viz import label_sheet, save_figure

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--out", type=Path, default=Path("label_sheets"))
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = {
        "pairs": SEN12MSCRPairs(args.data / "sen12mscr" / "pairs", keep_unusable=True),
        "series": SEN12MSCRSeries(args.data / "sen12mscr" / "timeseries", keep_unusable=True),
    }
    for name, dataset in sets.items():
        rows = []
        for sample in dataset:
            meta = sample["meta"]
            if not meta["usable"]:
                print(f"{name} {meta['id']}: not labelled ({meta['reason']})")
                continue
            rows.append(
                (
                    meta["id"][-18:],
                    sample["image"],
                    sample["reference"],
                    sample["mask"],
                    sample["bands"],
                )
            )
        for start in range(0, len(rows), args.rows):
            path = args.out / f"{name}_{start // args.rows:02d}.png"
            save_figure(label_sheet(rows[start : start + args.rows]), path, dpi=70)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
