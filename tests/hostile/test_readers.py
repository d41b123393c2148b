"""Every dataset reader and the datasets commands on damaged files: half a file, an empty
file and garbage give one line and exit 2 (or a correct result), never a traceback and
never a misleading "aborted"."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from s2clouds.cli.main import main

#: reader -> (fixture writer, the files to damage, relative to the dataset root)
READERS: dict[str, tuple[str, str]] = {
    "cloudsen12": ("cloudsen12", "*/L1C_B02.dat"),
    "cmc": ("cmc", "subscenes/*.npy"),
    "sen12ms": ("sen12ms", "**/*_s2_*.tif"),
    "temporal": ("temporal", "*"),
    "chips": ("chips", "*/*.tif"),
}
DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "half": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: b"\x89garbage\x00" * 100,
}


def run(argv: list[str]) -> tuple[int, str]:
    """Exit code and stderr of ``s2clouds argv`` (0 when it returns); tracebacks fail."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            return int(exc.code or 0), err.getvalue().strip()
    return 0, err.getvalue().strip()


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("kind", list(READERS))
def test_damaged_dataset_files(tmp_path: Path, maker, kind: str, damage: str) -> None:
    writer, pattern = READERS[kind]
    root = tmp_path / kind
    root.mkdir()
    maker(writer).write(root)
    target = sorted(p for p in root.glob(pattern) if p.is_file())[0]
    target.write_bytes(DAMAGES[damage](target.read_bytes()))
    for argv in (
        ["datasets", "info", str(root), "--kind", kind],
        ["datasets", "show", str(root), "0", "--kind", kind, "-o", str(tmp_path / "s.png")],
    ):
        code, err = run(argv)
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            assert err.startswith("error: ") and "\n" not in err, err


def test_a_damaged_pseudo_label_cache_is_computed_again(tmp_path: Path) -> None:
    from s2clouds.models.base import CloudModel
    from s2clouds.train.pseudolabels import PseudoLabelled

    class Table(CloudModel):
        name, bands, halo = "table", ("B02", "B03", "B04", "B08"), 0

        def predict_proba(self, image: np.ndarray, context: dict) -> np.ndarray:
            probs = np.zeros((4, *image.shape[1:]), np.float32)
            probs[0] = 1
            return probs

    images = [np.full((4, 8, 8), 0.1, np.float32)]
    cache = tmp_path / "cache"
    dataset = PseudoLabelled(images, bands=Table.bands, maskers=[Table(), Table()], cache=cache)
    first = dataset[0]["mask"]
    (stored,) = cache.glob("*.npz")
    stored.write_bytes(b"PK\x03\x04 damaged")
    again = dataset[0]
    assert again["meta"]["cached"] is False
    np.testing.assert_array_equal(again["mask"], first)
    assert dataset[0]["meta"]["cached"] is True
