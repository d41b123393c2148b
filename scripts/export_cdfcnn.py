"""Convert the published CD-FCNN Keras weights to the ONNX files s2clouds ships.

    python scripts/export_cdfcnn.py ../shared/models/cdfcnn

reads ``landsatbiomeRGBISWIR7.hdf5`` and ``landsatbiomeRGBI6.hdf5`` (IPL-UV/DL-L8S2-UV, MIT)
from the folder given, and writes ``cd-fcnn.onnx``, ``cd-fcnn-rgbi.onnx``, their ``.json``
specs and the ``LICENSE`` beside them into ``src/s2clouds/models/weights/cdfcnn/``. Needs
h5py and onnx (``pip install "s2clouds[peers,train]"``); no network access, no TensorFlow.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from s2clouds.models.cdfcnn import CDFCNN_DIR, VARIANTS, convert_cdfcnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source", type=Path, help="folder with the published .hdf5 files and LICENSE"
    )
    parser.add_argument("--out", type=Path, default=CDFCNN_DIR, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, variant in VARIANTS.items():
        result = convert_cdfcnn(args.source / variant.hdf5, name, args.out)
        print(
            f"{name}: wrote {result.onnx_path} ({result.onnx_path.stat().st_size} bytes); "
            f"max |onnx - keras| {result.max_abs_diff:.1e}; "
            f"receptive radius {result.receptive_radius} px at 30 m (from the layers)"
        )
    shutil.copyfile(args.source / "LICENSE", args.out / "LICENSE")


if __name__ == "__main__":
    main()
