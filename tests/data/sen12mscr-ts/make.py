"""Write a tiny SEN12MS-CR-TS time series in the real layout (``SEN12MSCRSeries``' format).

``<root>/<roi>/<YYYY-MM-DD>.tif``: 13-band uint16 GeoTIFFs of L1C DN, one per date, the scene
of ``tests/data/sen12mscr`` seen on ``len(DATES)`` dates: clear on all but ``CLOUDY``, which
holds that fixture's cloud, cirrus and shadow.

Usage: ``write(root)`` returns ``{"dates": DATES, "cloudy": index, "truth": labels}``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROI = "ROIs0003_146_p0"
DATES = ("2018-01-06", "2018-01-21", "2018-02-10", "2018-02-25", "2018-03-07", "2018-03-22")
CLOUDY = 2


def _pairs_maker():
    path = Path(__file__).parent.parent / "sen12mscr" / "make.py"
    spec = importlib.util.spec_from_file_location("_make_sen12mscr_for_ts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(root: Path, *, seed: int = 0) -> dict[str, object]:
    pairs = _pairs_maker()
    rng = np.random.default_rng(seed)
    clear, cloudy, truth = pairs.scene(rng)
    folder = Path(root) / ROI
    folder.mkdir(parents=True, exist_ok=True)
    for i, date in enumerate(DATES):
        image = cloudy if i == CLOUDY else clear * (1 + 0.005 * rng.standard_normal(clear.shape))
        pairs.write_tif(folder / f"{date}.tif", image)
    return {"dates": DATES, "cloudy": CLOUDY, "truth": truth}
