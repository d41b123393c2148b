"""Projects for the annotation app's tests: synthetic band folders, or the real On Cloud N chips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

RGBN = ["B02", "B03", "B04", "B08"]


def write_project(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "project.yaml").write_text(text)
    return folder


@pytest.fixture
def synthetic_project(tmp_path: Path, maker: Callable[[str], ModuleType]) -> Path:
    """A project of one 64 x 64 synthetic band folder inside the project, users alice/bob."""
    folder = tmp_path / "project"
    maker("geotiff").write_band_folder(folder / "images" / "scene", RGBN, size=64)
    return write_project(
        folder,
        "name: synthetic\nusers: [alice, bob]\n"
        "images:\n  - {id: scene, path: images/scene}\n"
        "views:\n  ndvi: {expression: '(B08 - B04) / (B08 + B04)'}\n",
    )


@pytest.fixture
def chips_project(tmp_path: Path, real_data: Path) -> Path:
    """A project of the real On Cloud N chips 1 and 2 (by absolute path, not copied), with
    their labels as reference masks."""
    lines = ["name: oncloudn", "users: [alice, bob]"]
    lines += ["views:", "  ndvi: {expression: '(B08 - B04) / (B08 + B04)', title: NDVI}", "images:"]
    for n in (1, 2):
        chip = real_data / f"oncloudn_chip{n}"
        lines += [
            f"  - id: chip{n}",
            f"    path: {chip}",
            f"    reference: {chip / 'label.tif'}",
            "    reference_scheme: binary",
        ]
    return write_project(tmp_path / "oncloudn", "\n".join(lines) + "\n")
