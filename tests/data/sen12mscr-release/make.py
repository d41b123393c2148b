"""Write a tiny SEN12MS-CR tree in the published layout (``SEN12MSCRRelease``' format).

``ROIs<seed>_<season>_{s2_cloudy,s2,s1}/{s2_cloudy,s2,s1}_<scene>/ROIs<seed>_<season>_<sensor>
_<scene>_p<patch>.tif``: S2 13-band uint16 L1C DN GeoTIFFs (the scenes of
``tests/data/sen12mscr``: a clear image, and the cloudy one with a thick cloud, cirrus and the
cloud's shadow), S1 2-band float32 dB; 10 m UTM, ``SIZE`` px square instead of 256. One patch
(:data:`LONELY`) has a cloudy file and no clear partner (incomplete: left out). A ``splits/``
folder holds the SEN12MS repository's scene lists (:data:`HOLDOUT` is a test scene,
:data:`VALIDATION` a validation scene).

Usage: ``write(root)`` returns ``{(roi, scene, patch): {"cloudy": DN, "clear": DN, "s1":
array, "truth": labels}}``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

#: (roi, scene, patch) of the complete triplets
PATCHES = (
    ("ROIs1158_spring", 1, 407),
    ("ROIs1158_spring", 63, 30),
    ("ROIs2017_winter", 112, 5),
)
LONELY = ("ROIs1158_spring", 1, 408)
#: the scene lines written to splits/SEN12MS_holdOutScenes.txt and ValidationScenes.txt
HOLDOUT = ("ROIs1158_spring", 63)
VALIDATION = ("ROIs2017_winter", 112)


def _pairs_maker():
    path = Path(__file__).parent.parent / "sen12mscr" / "make.py"
    spec = importlib.util.spec_from_file_location("_make_sen12mscr_for_release", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAIRS = _pairs_maker()
SIZE = PAIRS.SIZE


def patch_path(root: Path, roi: str, sensor: str, scene: int, patch: int) -> Path:
    """Where the release keeps one patch file."""
    return root / f"{roi}_{sensor}" / f"{sensor}_{scene}" / f"{roi}_{sensor}_{scene}_p{patch}.tif"


def write_s1(path: Path, values: np.ndarray) -> None:
    import rasterio
    from affine import Affine

    profile = {
        "driver": "GTiff",
        "count": 2,
        "height": SIZE,
        "width": SIZE,
        "dtype": "float32",
        "crs": PAIRS.CRS,
        "transform": Affine(10.0, 0.0, PAIRS.ORIGIN[0], 0.0, -10.0, PAIRS.ORIGIN[1]),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)


def write(root: Path, *, seed: int = 0) -> dict[tuple[str, int, int], dict[str, np.ndarray]]:
    root = Path(root)
    rng = np.random.default_rng(seed)
    written = {}
    for roi, scene, patch in PATCHES:
        clear, cloudy, truth = PAIRS.scene(rng)
        s1 = rng.normal(-12.0, 3.0, size=(2, SIZE, SIZE)).astype(np.float32)
        paths = {s: patch_path(root, roi, s, scene, patch) for s in ("s2_cloudy", "s2", "s1")}
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        written[(roi, scene, patch)] = {
            "cloudy": PAIRS.write_tif(paths["s2_cloudy"], cloudy),
            "clear": PAIRS.write_tif(paths["s2"], clear),
            "s1": s1,
            "truth": truth,
        }
        write_s1(paths["s1"], s1)
    roi, scene, patch = LONELY
    lonely = patch_path(root, roi, "s2_cloudy", scene, patch)
    PAIRS.write_tif(lonely, PAIRS.spectrum(PAIRS.VEGETATION, rng))
    splits = root / "splits"
    splits.mkdir(exist_ok=True)
    (splits / "SEN12MS_holdOutScenes.txt").write_text(f"{HOLDOUT[0]}/s1_{HOLDOUT[1]}\n")
    (splits / "ValidationScenes.txt").write_text(f"{VALIDATION[0]}/s2_{VALIDATION[1]}\n")
    return written
