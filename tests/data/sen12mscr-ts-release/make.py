"""Write a tiny SEN12MS-CR-TS tree in the published layout (``SEN12MSCRTSRelease``' format).

``ROIs<seed>/<roi>/S2/<t>/s2_ROIs<seed>_<roi>_ImgNo_<t>_<YYYY-MM-DD>_patch_<n>.tif`` (and the
same under ``S1/`` with ``s1_``, 2-band float32 dB): 13-band uint16 L1C DN GeoTIFFs, the scene
of ``tests/data/sen12mscr`` seen on ``len(DATES)`` dates, clear on all but ``CLOUDY``. Two
series: patch 0 of ROI ``ROIs1868/100`` (an official test ROI) and patch 3 of
``ROIs1970/21`` (a training ROI).

Usage: ``write(root)`` returns ``{series: {"dates": DATES, "cloudy": index, "truth": labels}}``
with series ``(seed folder, roi, patch)``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

DATES = ("2018-01-06", "2018-01-21", "2018-02-10", "2018-02-25", "2018-03-07")
CLOUDY = 2
SERIES = (("ROIs1868", 100, 0), ("ROIs1970", 21, 3))
TEST_SERIES = SERIES[0]


def _pairs_maker():
    path = Path(__file__).parent.parent / "sen12mscr" / "make.py"
    spec = importlib.util.spec_from_file_location("_make_sen12mscr_for_ts_release", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def file_path(root: Path, seed: str, roi: int, sensor: str, t: int, date: str, patch: int) -> Path:
    """Where the release keeps one acquisition of one patch."""
    return (
        root
        / seed
        / str(roi)
        / sensor.upper()
        / str(t)
        / f"{sensor}_{seed}_{roi}_ImgNo_{t}_{date}_patch_{patch}.tif"
    )


def write(root: Path, *, seed: int = 0) -> dict[tuple[str, int, int], dict[str, object]]:
    import rasterio

    pairs = _pairs_maker()
    rng = np.random.default_rng(seed)
    written: dict[tuple[str, int, int], dict[str, object]] = {}
    for series in SERIES:
        seed_dir, roi, patch = series
        clear, cloudy, truth = pairs.scene(rng)
        for t, date in enumerate(DATES):
            image = (
                cloudy if t == CLOUDY else clear * (1 + 0.005 * rng.standard_normal(clear.shape))
            )
            s2 = file_path(Path(root), seed_dir, roi, "s2", t, date, patch)
            s2.parent.mkdir(parents=True, exist_ok=True)
            pairs.write_tif(s2, image)
            s1 = file_path(Path(root), seed_dir, roi, "s1", t, date, patch)
            s1.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(s2) as ref:
                profile = {**ref.profile, "count": 2, "dtype": "float32"}
            with rasterio.open(s1, "w", **profile) as dst:
                dst.write(rng.normal(-12, 3, (2, pairs.SIZE, pairs.SIZE)).astype(np.float32))
        written[series] = {"dates": DATES, "cloudy": CLOUDY, "truth": truth}
    return written
