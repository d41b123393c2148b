"""project.yaml: loading, defaults, and ``s2clouds annotate check`` naming the bad field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("yaml")

from s2clouds.app.project import ProjectError, inside, load_project  # noqa: E402
from s2clouds.cli.main import cli  # noqa: E402


def write_project(folder: Path, text: str) -> Path:
    (folder / "project.yaml").write_text(text)
    return folder


def test_defaults_are_the_canonical_classes_and_builtin_views(synthetic_project: Path) -> None:
    project = load_project(synthetic_project)
    assert [c.name for c in project.classes] == [
        "clear",
        "thick cloud",
        "thin cloud",
        "cloud shadow",
    ]
    assert [c.key for c in project.classes] == ["1", "2", "3", "4"]
    assert [v.name for v in project.views] == ["truecolor", "falsecolor", "nir", "cirrus", "ndvi"]
    assert project.users == ("alice", "bob")
    assert project.image("scene").path == synthetic_project.resolve() / "images" / "scene"


def test_check_says_ok(synthetic_project: Path) -> None:
    result = CliRunner().invoke(cli, ["annotate", "check", str(synthetic_project)])
    assert result.exit_code == 0, result.output
    assert "ok: 1 image(s), 4 classes" in result.output


BAD = {
    "images[0].path": "images:\n  - {id: a, path: nowhere}\n",
    "images[0].id": "images:\n  - {id: '../a', path: images/scene}\n",
    "images[1].id": "images:\n  - {id: a, path: images/scene}\n  - {id: a, path: images/scene}\n",
    "images[0].reference_scheme": "images:\n  - {id: a, path: images/scene, reference_scheme: nope}\n",
    "images[0].colour": "images:\n  - {id: a, path: images/scene, colour: red}\n",
    "images[0]": "images:\n  - {id: a, path: images/scene, dataset: {path: images, index: 0}}\n",
    "images[0].dataset.index": "images:\n  - {id: a, dataset: {path: images, index: -1}}\n",
    "images[0].dataset.kind": "images:\n  - {id: a, dataset: {path: images, index: 0, kind: x}}\n",
    "images[0].dataset.path": "images:\n  - {id: a, dataset: {path: nowhere, index: 0}}\n",
    "images[0].window": "images:\n  - {id: a, path: images/scene, window: [0, 0, -5, 10]}\n",
    "classes[1].value": "images: [images/scene]\nclasses:\n  - {value: 0}\n  - {value: 7}\n",
    "classes[0].colour": "images: [images/scene]\nclasses:\n  - {value: 0, colour: green}\n",
    "classes[1].key": "images: [images/scene]\nclasses:\n  - {value: 0, key: a}\n  - {value: 1, key: a}\n",
    "views.ndvi.expression": "images: [images/scene]\nviews:\n  ndvi: {expression: '__import__(1)'}\n",
    "views.rgb.bands": "images: [images/scene]\nviews:\n  rgb: {bands: [B04, B03]}\n",
    "users[1]": "images: [images/scene]\nusers: [alice, ../../etc]\n",
    "assistant.rounds": "images: [images/scene]\nassistant: {rounds: 0}\n",
    "scheme": "images: [images/scene]\nscheme: nope\n",
    "colour": "images: [images/scene]\ncolour: red\n",
}


@pytest.mark.parametrize("field", sorted(BAD))
def test_check_names_the_bad_field(synthetic_project: Path, field: str) -> None:
    write_project(synthetic_project, BAD[field])
    with pytest.raises(ProjectError, match=re.escape(f"project.yaml: {field}: ")):
        load_project(synthetic_project)
    result = CliRunner().invoke(cli, ["annotate", "check", str(synthetic_project)])
    assert result.exit_code != 0


def test_check_of_a_folder_without_project_yaml(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="project.yaml not found"):
        load_project(tmp_path)


def test_invalid_yaml_is_named(tmp_path: Path) -> None:
    write_project(tmp_path, "images: [\n")
    with pytest.raises(ProjectError, match="not valid YAML"):
        load_project(tmp_path)


def test_inside_refuses_absolute_traversal_and_symlinks_out(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "annotations").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "annotations" / "mallory").symlink_to(outside)
    assert inside(root, Path("annotations/alice")) == root.resolve() / "annotations" / "alice"
    for bad in (
        "/etc/passwd",
        "../elsewhere",
        "annotations/../../elsewhere",
        "annotations/mallory",
    ):
        with pytest.raises(ProjectError):
            inside(root, Path(bad))


def test_the_example_project_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "annotate"
    project = load_project(example)
    assert project.image("chip1").reference is not None
