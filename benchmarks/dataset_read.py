"""Dataset read speed: s2clouds readers against the raw cost of reading the same bytes.

CloudSEN12 section: writes a temporary ``test`` split (``--samples`` patches x 13 L1C int16
bands of 512 x 512, plus ``manual_hq``), then times random access through ``CloudSEN12[i]``
against direct ``np.memmap`` slices of the same 13 files + ``astype(float32) * scale``.
Both sides read from the page cache (the files were just written), so this measures the
reader's overhead, not the disk. Goal: the reader within 1.5x of the raw read.

Run::

    .venv/bin/python benchmarks/dataset_read.py --samples 64 --reads 128

Sections are functions ``(args) -> list[Result]`` registered in ``SECTIONS``; add a new
dataset by writing one more section and registering it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2clouds.bands import L1C_BANDS
from s2clouds.datasets.cloudsen12 import PATCH_SIZE, REFLECTANCE_SCALE, CloudSEN12


@dataclass(frozen=True)
class Result:
    """One timed method: samples per second (best of the rounds), and the names of the
    baselines (comma separated) it is compared with; empty for a baseline itself.
    """

    section: str
    method: str
    samples_per_s: float
    compare_to: str = ""


def time_pass(read: Callable[[int], object], indices: Sequence[int]) -> float:
    """Seconds to read every sample of ``indices`` once."""
    start = time.perf_counter()
    for i in indices:
        read(i)
    return time.perf_counter() - start


def best_rates(
    readers: Sequence[tuple[str, Callable[[int], object], str]],
    indices: Sequence[int],
    rounds: int,
    section: str,
) -> list[Result]:
    """Samples per second of each reader, best of ``rounds``; readers take turns each round so
    that background load on a shared machine hits them alike.
    """
    best = [float("inf")] * len(readers)
    for _ in range(rounds):
        for k, (_, read, _compare) in enumerate(readers):
            best[k] = min(best[k], time_pass(read, indices))
    return [
        Result(section, name, len(indices) / seconds, compare)
        for (name, _, compare), seconds in zip(readers, best, strict=True)
    ]


# -- CloudSEN12 --------------------------------------------------------------------------------
def write_cloudsen12_split(folder: Path, n_samples: int, seed: int = 0) -> list[Path]:
    """Write ``n_samples`` random patches of the 13 L1C bands and ``manual_hq`` into ``folder``.

    Returns the 13 band files in catalogue order. Written patch by patch so memory stays small.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (n_samples, PATCH_SIZE, PATCH_SIZE)
    paths = [folder / f"L1C_{band}.dat" for band in L1C_BANDS]
    for path in paths:
        out = np.memmap(path, dtype=np.int16, mode="w+", shape=shape)
        for i in range(n_samples):
            out[i] = rng.integers(0, 10000, (PATCH_SIZE, PATCH_SIZE), dtype=np.int16)
        out.flush()
        del out
    labels = np.memmap(folder / "LABEL_manual_hq.dat", dtype=np.int8, mode="w+", shape=shape)
    for i in range(n_samples):
        labels[i] = rng.integers(0, 4, (PATCH_SIZE, PATCH_SIZE), dtype=np.int8)
    labels.flush()
    del labels
    return paths


def raw_reader(
    paths: Sequence[Path], n_samples: int, label: Path | None = None
) -> Callable[[int], object]:
    """The baseline of the brief: memmap slices, ``astype(float32) * scale``, stacked."""
    shape = (n_samples, PATCH_SIZE, PATCH_SIZE)
    bands = [np.memmap(p, dtype=np.int16, mode="r", shape=shape) for p in paths]
    labels = np.memmap(label, dtype=np.int8, mode="r", shape=shape) if label else None

    def read(i: int) -> object:
        image = np.stack([b[i].astype(np.float32) * np.float32(REFLECTANCE_SCALE) for b in bands])
        return image if labels is None else (image, np.array(labels[i]))

    return read


def minimal_reader(paths: Sequence[Path], n_samples: int) -> Callable[[int], object]:
    """The least work possible: each band scaled straight into one new (13, 512, 512) array."""
    shape = (n_samples, PATCH_SIZE, PATCH_SIZE)
    bands = [np.memmap(p, dtype=np.int16, mode="r", shape=shape) for p in paths]
    scale = np.float32(REFLECTANCE_SCALE)

    def read(i: int) -> object:
        out = np.empty((len(bands), PATCH_SIZE, PATCH_SIZE), dtype=np.float32)
        for c, band in enumerate(bands):
            np.multiply(band[i], scale, out=out[c])
        return out

    return read


def cloudsen12_section(args: argparse.Namespace) -> list[Result]:
    """Random access through ``CloudSEN12[i]`` vs raw memmap reads of the same files."""
    with tempfile.TemporaryDirectory(prefix="s2clouds-bench-", dir=args.tmp) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        paths = write_cloudsen12_split(root / "test", args.samples, seed=args.seed)
        size_gb = sum(p.stat().st_size for p in root.rglob("*.dat")) / 1e9
        print(
            f"wrote {args.samples} patches, {size_gb:.2f} GB, in {time.perf_counter() - started:.1f} s"
        )
        indices = np.random.default_rng(args.seed).integers(0, args.samples, args.reads).tolist()
        minimal, stacked, labelled = "raw minimal", "raw astype+stack", "raw astype+stack+label"
        readers: list[tuple[str, Callable[[int], object], str]] = [
            (minimal, minimal_reader(paths, args.samples), ""),
            (stacked, raw_reader(paths, args.samples), ""),
            (labelled, raw_reader(paths, args.samples, root / "test" / "LABEL_manual_hq.dat"), ""),
            (
                "CloudSEN12[i] label=None",
                CloudSEN12(root, "test", label=None).__getitem__,
                f"{stacked},{minimal}",
            ),
            ("CloudSEN12[i] manual_hq", CloudSEN12(root, "test").__getitem__, labelled),
        ]
        for _, read, _compare in readers:  # warm the page cache and the memmaps
            for i in range(args.samples):
                read(i)
        return best_rates(readers, indices, args.rounds, "cloudsen12")


#: section name -> function; main() runs them in this order
SECTIONS: dict[str, Callable[[argparse.Namespace], list[Result]]] = {
    "cloudsen12": cloudsen12_section,
}


def print_results(results: Sequence[Result]) -> None:
    """One line per method; readers also show their time per sample relative to each baseline."""
    rates = {r.method: r.samples_per_s for r in results}
    for r in results:
        ratios = ", ".join(
            f"time {rates[b] / r.samples_per_s:.2f}x of {b}" for b in r.compare_to.split(",") if b
        )
        print(f"  {r.method:<26} {r.samples_per_s:8.1f} samples/s  {ratios}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--samples", type=int, default=64, help="patches written (13 x 0.5 MB each)"
    )
    parser.add_argument("--reads", type=int, default=128, help="random reads per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temporary data")
    parser.add_argument(
        "--section", choices=list(SECTIONS), action="append", help="run only these sections"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for name in args.section or list(SECTIONS):
        print(f"[{name}]")
        print_results(SECTIONS[name](args))


if __name__ == "__main__":
    main()
