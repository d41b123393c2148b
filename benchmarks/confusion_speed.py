"""Speed of streaming confusion counting against a bare ``np.bincount`` in the same run.

One chunk of random uint8 labels (``--chunk`` pixels, default 10^7) is generated once and fed
repeatedly until ``--pixels`` (default 10^9) have been counted, so label generation is not
timed. Each repetition times ``ConfusionMatrix.update`` (which also validates the labels,
drops the ignore value 255 and streams in internal chunks) and the bare
``np.bincount(truth * n + pred, minlength=n * n)`` alternately on the same chunk. Prints both
rates, their ratio (goal: within 1.5x) and checks that the counts agree.

    python benchmarks/confusion_speed.py                 # 10^9 pixels, about a minute
    python benchmarks/confusion_speed.py --pixels 1e8    # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from s2clouds.benchmark import ConfusionMatrix


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=float, default=1e9, help="labelled pixels to count")
    parser.add_argument("--chunk", type=float, default=1e7, help="pixels per fed chunk")
    parser.add_argument("--classes", type=int, default=4, help="number of classes")
    parser.add_argument("--valid", action="store_true", help="also pass a random valid mask")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def make_chunk(size: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, size, dtype=np.uint8)
    pred = rng.integers(0, n_classes, size, dtype=np.uint8)
    return pred, truth


def bare_bincount(
    pred: np.ndarray, truth: np.ndarray, n: int, valid: np.ndarray | None
) -> np.ndarray:
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    code = truth.astype(np.uint16) * np.uint16(n) + pred  # uint16: no overflow for n <= 255
    return np.bincount(code, minlength=n * n).reshape(n, n)


def main() -> None:
    args = parse_args()
    chunk, n = int(args.chunk), args.classes
    repeats = max(1, round(args.pixels / chunk))
    pred, truth = make_chunk(chunk, n, args.seed)
    valid = np.random.default_rng(args.seed + 1).random(chunk) < 0.9 if args.valid else None

    matrix = ConfusionMatrix(n)
    bare = np.zeros((n, n), dtype=np.int64)
    ours_s = bare_s = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        matrix.update(pred, truth, valid)
        ours_s += time.perf_counter() - start
        start = time.perf_counter()
        bare += bare_bincount(pred, truth, n, valid)
        bare_s += time.perf_counter() - start

    pixels = repeats * chunk
    if not np.array_equal(matrix.counts, bare):
        raise SystemExit("counts differ between ConfusionMatrix and np.bincount")
    ours_rate, bare_rate = pixels / ours_s / 1e6, pixels / bare_s / 1e6
    print(
        f"pixels counted     : {pixels:.3e} ({repeats} x {chunk:.0e}, {n} classes, valid mask: {args.valid})"
    )
    print(f"ConfusionMatrix    : {ours_s:7.2f} s  {ours_rate:8.1f} Mpx/s")
    print(f"bare np.bincount   : {bare_s:7.2f} s  {bare_rate:8.1f} Mpx/s")
    print(f"ratio (ours / bare): {ours_s / bare_s:.2f}x time (goal <= 1.5x); counts agree")


if __name__ == "__main__":
    main()
