"""OmniCloudMask from local weights: refused with the expected file names without them; with
them (here randomly initialised networks in the real file format) the adapter gives what the
package's own ``predict_from_array`` gives for those files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from s2clouds.errors import BandError, ModelError
from s2clouds.models.base import ModelContext
from s2clouds.models.omnicloud import WEIGHTS_ENV, OmniCloudMaskModel, listed_weights
from s2clouds.models.registry import get_model

needs_package = pytest.mark.skipif(
    importlib.util.find_spec("omnicloudmask") is None, reason="needs the omnicloudmask package"
)


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of the latest OmniCloudMask version, with random weights of the right
    architectures, written as the package's safetensors files."""
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch = pytest.importorskip("torch")
    safetensors = pytest.importorskip("safetensors.torch")
    folder = tmp_path_factory.mktemp("ocm-weights")
    _, rows = listed_weights()
    torch.manual_seed(0)
    for row in rows:
        assert row["model_library"] == "smp"
        network = smp.Unet(
            encoder_name=row["timm_model_name"], encoder_weights=None, in_channels=3, classes=4
        )
        safetensors.save_file(network.state_dict(), str(folder / row["file_name"]))
    return folder


def chip(real_data: Path, size: int) -> np.ndarray:
    """(3, size, size) red, green, NIR reflectance of On Cloud N chip 1."""
    rasterio = pytest.importorskip("rasterio")
    planes = []
    for band in ("B04", "B03", "B08"):
        with rasterio.open(real_data / "oncloudn_chip1" / f"{band}.tif") as src:
            planes.append(src.read(1)[:size, :size])
    return np.stack(planes).astype(np.float32) / 10000


@needs_package
def test_without_weights_the_error_names_the_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    version, rows = listed_weights()
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(ModelError, match=WEIGHTS_ENV) as info:
        get_model("omnicloudmask", ["B02", "B03", "B04", "B08"])
    assert all(row["file_name"] in str(info.value) for row in rows)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    (tmp_path / rows[0]["file_name"]).write_bytes(b"\0" * 100)
    with pytest.raises(ModelError, match="is truncated"):
        OmniCloudMaskModel.for_bands(["B03", "B04", "B08"])
    with pytest.raises(BandError, match="missing B08"):
        OmniCloudMaskModel.for_bands(["B02", "B03", "B04"])


@needs_package
@pytest.mark.filterwarnings("ignore:Patch size too large:UserWarning")
def test_the_adapter_is_the_package_run_on_the_same_files(
    weights_folder: Path, real_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import omnicloudmask

    monkeypatch.setenv(WEIGHTS_ENV, str(weights_folder))
    model = get_model("omnicloudmask", ["B02", "B03", "B04", "B08"])
    image = chip(real_data, 160)
    image[:, :4, :6] = np.nan
    probs = model.predict_proba(image, ModelContext(resolution=10.0))
    assert probs.shape == (4, 160, 160) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert (probs[0, :4, :6] == 1).all()
    expected = omnicloudmask.predict_from_array(
        np.nan_to_num(image, nan=0.0),
        export_confidence=True,
        inference_device="cpu",
        destination_model_dir=weights_folder,  # files present: the package downloads nothing
    )
    valid = np.all(np.isfinite(image), axis=0)
    expected = expected[:, valid] / expected[:, valid].sum(axis=0)  # its sums are 1 +- 0.5 %
    np.testing.assert_allclose(probs[:, valid], expected, atol=1e-5)
    small = model.predict_proba(
        image[:, :20, :30], ModelContext(resolution=10.0)
    )  # padded to 50 px
    assert small.shape == (4, 20, 30)
