"""The one Registry type, and third-party models, datasets and input formats found through
entry points (a fake ``importlib.metadata.entry_points``; nothing is installed)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.datasets.base import CloudDataset, Sample
from s2clouds.datasets.registry import DATASETS, detect_dataset, open_dataset
from s2clouds.errors import PluginError, RegistryError, SceneFormatError, UnknownNameError
from s2clouds.io.remote import SIGNERS, resolve_signer, sign_href
from s2clouds.io.scenes import OPENERS, OpenRequest, Scene, read_scene, scene_from_array
from s2clouds.models.base import CloudModel, ModelContext
from s2clouds.models.registry import MODELS, ModelInfo, get_model, get_model_info, list_models
from s2clouds.registry import Registry, normalise

RGBN = ("B02", "B03", "B04", "B08")
PLUGIN = "s2clouds_fake_plugin"


# ------------------------------------------------------------------ the Registry type
def test_one_name_rule_one_duplicate_policy_one_error() -> None:
    shapes: Registry[int] = Registry("shape", hint="(or a number of sides)")
    shapes.register("Tri_Angle", 3)
    shapes.register_lazy("square", lambda: 4)
    shapes.alias("quad", "square")
    assert normalise(" Tri_Angle ") == "tri-angle"
    assert shapes["tri-angle"] == 3 and shapes[" TRI_ANGLE"] == 3 and shapes["quad"] == 4
    assert shapes.names() == ["Tri_Angle", "square"]  # as registered, aliases not listed
    assert "Square" in shapes and "circle" not in shapes and shapes.get("circle") is None
    with pytest.raises(RegistryError, match="registered twice"):
        shapes.register("tri-angle", 33)
    shapes.register("tri-angle", 33, replace=True)
    assert shapes["Tri_Angle"] == 33
    with pytest.raises(UnknownNameError) as info:
        shapes["squar"]
    message = str(info.value)
    assert "unknown shape 'squar'; available: tri-angle, square" in message
    assert "did you mean 'square'?" in message and "(or a number of sides)" in message
    assert isinstance(info.value, LookupError)


def test_lazy_entries_load_once_and_a_broken_one_says_why() -> None:
    calls: list[int] = []
    shapes: Registry[int] = Registry("shape")
    shapes.register_lazy("hexagon", lambda: calls.append(6) or 6)
    shapes.register_lazy("broken", "no_such_module_s2c:thing")
    assert shapes.names() == ["hexagon", "broken"] and calls == []  # listing loads nothing
    assert shapes["hexagon"] == shapes["hexagon"] == 6 and calls == [6]
    with pytest.raises(PluginError, match="cannot load the shape 'broken'.*ModuleNotFound"):
        shapes["broken"]


def test_threads_wait_for_the_builtin_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup from a second thread while the first imports the built-in entries waits for
    them (Dask's threaded workers build models at once)."""
    from concurrent.futures import ThreadPoolExecutor

    host = types.ModuleType("s2c_registry_host")
    host.SHAPES = Registry("shape", builtins="s2c_slow_builtins")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "s2c_registry_host", host)
    (tmp_path / "s2c_slow_builtins.py").write_text(
        "import time, s2c_registry_host\n"
        "time.sleep(0.3)\n"
        "s2c_registry_host.SHAPES.register('square', 4)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "s2c_slow_builtins", raising=False)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: host.SHAPES["square"], range(4)))
    assert found == [4, 4, 4, 4]


# ------------------------------------------------------------------ entry points
class FakeModel(CloudModel):
    """Clear everywhere."""

    name, bands, halo = "fake-model", RGBN, 0

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        probs = np.zeros((4, *image.shape[1:]), np.float32)
        probs[0] = 1.0
        return probs


class FakeDataset(CloudDataset):
    """A folder holding ``fake.marker``: one 8 x 8 sample."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (Path(path) / "fake.marker").is_file()

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> Sample:
        self._check_index(index)
        return {"image": np.zeros((4, 8, 8), np.float32), "bands": RGBN, "meta": {"id": "0"}}


class NpyOpener:
    """A ``.npy`` file of (4, H, W) reflectance in RGBN order (a third-party format)."""

    description = "a .npy array of RGBN reflectance"

    def guess_can_open(self, source: Any) -> bool:
        return isinstance(source, (str, Path)) and str(source).endswith(".npy")

    def open(self, source: Any, request: OpenRequest) -> Scene:
        return scene_from_array(np.load(source), request.bands or RGBN, level=request.level)


def _plugin_module() -> types.ModuleType:
    module = types.ModuleType(PLUGIN)
    module.INFO = ModelInfo(  # type: ignore[attr-defined]
        "ignored-name", lambda bands: FakeModel(), RGBN, "clear everywhere"
    )
    module.FakeDataset = FakeDataset  # type: ignore[attr-defined]
    module.NpyOpener = NpyOpener  # type: ignore[attr-defined]
    module.NOT_A_MODEL = 42  # type: ignore[attr-defined]
    module.sign = lambda href: href + "?signed"  # type: ignore[attr-defined]
    return module


POINTS = {
    "s2clouds.models": [
        metadata.EntryPoint("fake-model", f"{PLUGIN}:INFO", "s2clouds.models"),
        metadata.EntryPoint("bad-model", f"{PLUGIN}:NOT_A_MODEL", "s2clouds.models"),
        metadata.EntryPoint("physical", f"{PLUGIN}:INFO", "s2clouds.models"),  # taken
    ],
    "s2clouds.datasets": [
        metadata.EntryPoint("fake-kind", f"{PLUGIN}:FakeDataset", "s2clouds.datasets")
    ],
    "s2clouds.openers": [metadata.EntryPoint("npy", f"{PLUGIN}:NpyOpener", "s2clouds.openers")],
    "s2clouds.signers": [metadata.EntryPoint("my-cloud", f"{PLUGIN}:sign", "s2clouds.signers")],
}


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fake plugin package, as if installed; the registries read it on first lookup."""
    monkeypatch.setitem(sys.modules, PLUGIN, _plugin_module())
    monkeypatch.setattr(
        metadata, "entry_points", lambda group=None, **_: list(POINTS.get(group or "", []))
    )
    registries = (MODELS, DATASETS, OPENERS, SIGNERS)
    resolve_signer.cache_clear()
    for registry in registries:
        registry.rescan()
    yield
    for registry in registries:  # read again (without the fakes) on the next lookup
        registry.rescan()
    resolve_signer.cache_clear()


@pytest.mark.usefixtures("plugins")
def test_a_plugin_model_is_found_by_its_entry_point_name() -> None:
    with pytest.warns(UserWarning, match="plugin 'physical'.*already has a model"):
        names = MODELS.names()
    assert names[-2:] == ["bad-model", "fake-model"]  # after the built-in ones, by name
    assert get_model_info("physical").description != "clear everywhere"  # built-in wins
    info = get_model_info("Fake_Model")
    assert info.name == "fake-model" and info.description == "clear everywhere"
    model = get_model("fake-model", RGBN)
    assert model.predict_proba(np.zeros((4, 3, 3), np.float32), ModelContext())[0].all()
    with pytest.raises(PluginError, match="bad-model.*entry point group s2clouds.models"):
        get_model_info("bad-model")
    with pytest.warns(UserWarning, match="bad-model"):  # a listing skips a broken plugin
        assert "fake-model" in [i.name for i in list_models()]


@pytest.mark.usefixtures("plugins")
def test_a_plugin_dataset_is_detected_and_opened(tmp_path: Path) -> None:
    (tmp_path / "fake.marker").write_text("")
    assert list(DATASETS)[-1] == "fake-kind"
    assert detect_dataset(tmp_path) == "fake-kind"
    dataset = open_dataset(tmp_path)
    assert isinstance(dataset, FakeDataset) and len(dataset) == 1


@pytest.mark.usefixtures("plugins")
def test_a_plugin_opener_reads_its_format_and_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "scene.npy"
    np.save(path, np.full((4, 6, 5), 0.2, np.float32))
    scene = read_scene(path, level="L2A")
    assert scene.bands == RGBN and (scene.grid.height, scene.grid.width) == (6, 5)
    assert scene.level == "L2A"
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(SceneFormatError, match=r"\.npy array of RGBN reflectance \(npy\)"):
        read_scene(text)


@pytest.mark.usefixtures("plugins")
def test_a_plugin_signer_signs_remote_hrefs() -> None:
    assert sign_href("https://example.invalid/B04.tif", "My_Cloud").endswith("B04.tif?signed")
    assert SIGNERS.names() == ["planetary-computer", "my-cloud"]


def test_without_plugins_the_registries_hold_the_builtins() -> None:
    assert "fake-model" not in MODELS and "npy" not in OPENERS and "fake-kind" not in DATASETS
    assert "my-cloud" not in SIGNERS
    assert OPENERS.names() == ["dataarray", "array", "stac", "safe", "band-folder", "geotiff"]
