"""Annotation projects: a folder with ``project.yaml`` listing images, classes, views and users.

Example ``project.yaml``::

    name: alps-2024                 # optional, shown in the app
    scheme: cloudsen12              # label scheme 'annotate export' writes by default
                                    # (any of 's2clouds labels'; default canonical)
    users: [alice, bob]             # who annotates (default: [annotator])
    classes:                        # default: the canonical CloudSEN12 classes
      - {value: 0, name: clear, colour: "#267300", key: "1"}
      - {value: 1, name: thick cloud, colour: "#ffffff", key: "2"}
    views:                          # extra views besides the built-in ones
      ndvi: {expression: "(B08 - B04) / (B08 + B04)"}
      swir: {bands: [B12, B11, B04]}
    assistant: {bands: [B02, B03, B04, B08], rounds: 60}
    images:
      - id: chip1                   # letters, digits, _ and -
        path: images/chip1          # a band folder, GeoTIFF or SAFE; relative to the project
        reference: images/chip1/label.tif   # optional: reference mask for agreement scores
        reference_scheme: binary
      - id: t32tqm-a                # a window of a large scene: row, col, height, width (px)
        path: S2B_MSIL1C_20220615T101559_N0400_R065_T32TQM_20220615T122613.SAFE
        window: [0, 0, 1024, 1024]
      - id: cs12-17                 # a sample of a dataset s2clouds reads, by index; its
        dataset: {kind: cloudsen12, path: /data/cloudsen12, index: 17, options: {split: test}}
                                    # label is the reference mask

:func:`load_project` validates all of it and raises :class:`ProjectError` naming the bad
field (``images[1].path: ...``). Image paths come from the project's author; requests to
the app never carry paths, only image ids and user names checked against this file.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2clouds.bands import canonical_band_names
from s2clouds.errors import S2CloudsError
from s2clouds.io.limits import check_regular_file
from s2clouds.labels import CANONICAL_CLASSES, CANONICAL_COLOURS, get_scheme

PROJECT_FILE = "project.yaml"
ANNOTATIONS_DIR = "annotations"
#: largest project.yaml read (a config, not data)
MAX_CONFIG_BYTES = 1 << 20
#: image ids and user names: safe as file names on every system, no dots, no separators
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
COLOUR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_KEYS = {0: "1", 1: "2", 2: "3", 3: "4"}
#: built-in views: name -> (title, bands); shown when the image has the bands
BUILTIN_VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "truecolor": ("True colour (B04 B03 B02)", ("B04", "B03", "B02")),
    "falsecolor": ("False colour (B12 B08 B04: SWIR, NIR, red)", ("B12", "B08", "B04")),
    "nir": ("Near infrared (B08)", ("B08",)),
    "cirrus": ("Cirrus (B10)", ("B10",)),
}
ALLOWED_EXPRESSION_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.USub,
    ast.UAdd,
)


class ProjectError(S2CloudsError, ValueError):
    """An invalid project: the message names the file and the field."""


@dataclass(frozen=True)
class ClassSpec:
    value: int  # canonical class value (0 clear, 1 thick cloud, 2 thin cloud, 3 shadow)
    name: str
    colour: str  # "#rrggbb"
    key: str  # keyboard shortcut


@dataclass(frozen=True)
class ViewSpec:
    name: str
    title: str
    bands: tuple[str, ...] = ()  # 1 (grey) or 3 (RGB) bands
    expression: str | None = None  # band arithmetic, shown grey


@dataclass(frozen=True)
class DatasetSample:
    path: Path
    index: int
    kind: str | None = None  # detected when None
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ImageSpec:
    id: str
    path: Path
    reference: Path | None = None
    reference_scheme: str = "canonical"
    bands: tuple[str, ...] | None = None
    dataset: DatasetSample | None = None
    window: tuple[int, int, int, int] | None = None  # row, col, height, width


@dataclass
class Project:
    root: Path
    name: str
    scheme: str
    users: tuple[str, ...]
    classes: tuple[ClassSpec, ...]
    views: tuple[ViewSpec, ...]
    images: tuple[ImageSpec, ...]
    assistant_bands: tuple[str, ...] | None = None
    assistant_rounds: int = 60
    extra: dict[str, Any] = field(default_factory=dict)

    def image(self, image_id: str) -> ImageSpec:
        """The listed image ``image_id`` (KeyError for anything else)."""
        for spec in self.images:
            if spec.id == image_id:
                return spec
        raise KeyError(image_id)

    def annotation_dir(self, user: str) -> Path:
        """``<project>/annotations/<user>``, refused when it (or a parent) leads out of the
        project through a symlink."""
        if user not in self.users:
            raise KeyError(user)
        return inside(self.root, Path(ANNOTATIONS_DIR) / user)


def inside(root: Path, relative: Path) -> Path:
    """``root / relative`` with symlinks resolved, refused (:class:`ProjectError`) when it is
    absolute, climbs with ``..`` or resolves outside ``root`` (a symlink out)."""
    if relative.is_absolute() or ".." in relative.parts:
        raise ProjectError(f"{relative} is not a path inside the project")
    base = root.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ProjectError(
            f"{relative} leads out of the project {base} (a symlink to {target}); refused"
        )
    return target


def _fail(field_name: str, message: str) -> ProjectError:
    return ProjectError(f"{PROJECT_FILE}: {field_name}: {message}")


def _name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise _fail(
            field_name,
            f"{value!r} is not a valid name (1-64 letters, digits, '_' or '-', starting with "
            "a letter or digit)",
        )
    return value


def _bands(value: Any, field_name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(b, str) for b in value):
        raise _fail(field_name, f"give a list of band names such as [B04, B03, B02], not {value!r}")
    try:
        return canonical_band_names(tuple(value))
    except S2CloudsError as exc:
        raise _fail(field_name, str(exc)) from exc


def check_expression(expression: str, field_name: str) -> tuple[str, ...]:
    """The bands an arithmetic ``expression`` (band names, numbers, + - * /) reads."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise _fail(field_name, f"{expression!r} is not a valid expression ({exc.msg})") from exc
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_EXPRESSION_NODES):
            raise _fail(
                field_name,
                f"{expression!r} uses {type(node).__name__}; only band names, numbers and "
                "+ - * / ( ) are allowed",
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise _fail(field_name, f"{expression!r}: {node.value!r} is not a number")
        if isinstance(node, ast.Name):
            names.append(node.id)
    if not names:
        raise _fail(field_name, f"{expression!r} reads no band")
    return _bands(sorted(set(names)), field_name)


def _classes(value: Any) -> tuple[ClassSpec, ...]:
    if value is None:
        return tuple(
            ClassSpec(
                v, name, "#{:02x}{:02x}{:02x}".format(*CANONICAL_COLOURS[v][:3]), DEFAULT_KEYS[v]
            )
            for v, name in CANONICAL_CLASSES.items()
        )
    if not isinstance(value, list) or not value:
        raise _fail("classes", "give a list of classes ({value: 0, name: clear, colour: ...})")
    out, seen_values, seen_keys = [], set(), set()
    for i, item in enumerate(value):
        where = f"classes[{i}]"
        if not isinstance(item, dict):
            raise _fail(where, "each class is a mapping with value, name, colour and key")
        unknown = set(item) - {"value", "name", "colour", "color", "key"}
        if unknown:
            raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
        v = item.get("value")
        if not isinstance(v, int) or isinstance(v, bool) or v not in CANONICAL_CLASSES:
            raise _fail(
                f"{where}.value",
                f"{v!r} is not a canonical class ({', '.join(f'{k} {n}' for k, n in CANONICAL_CLASSES.items())})",
            )
        if v in seen_values:
            raise _fail(f"{where}.value", f"class {v} is listed twice")
        name = item.get("name", CANONICAL_CLASSES[v])
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise _fail(f"{where}.name", f"{name!r} is not a class name")
        default_colour = "#{:02x}{:02x}{:02x}".format(*CANONICAL_COLOURS[v][:3])
        colour = item.get("colour", item.get("color", default_colour))
        if not isinstance(colour, str) or not COLOUR_PATTERN.match(colour):
            raise _fail(f"{where}.colour", f"{colour!r} is not a colour like '#ff8800'")
        key = str(item.get("key", DEFAULT_KEYS[v]))
        if len(key) != 1 or not key.isalnum() or key in seen_keys:
            raise _fail(f"{where}.key", f"{key!r} is not a free single letter or digit")
        seen_values.add(v)
        seen_keys.add(key)
        out.append(ClassSpec(v, name, colour.lower(), key))
    return tuple(out)


def _views(value: Any) -> tuple[ViewSpec, ...]:
    views = [ViewSpec(n, title, bands) for n, (title, bands) in BUILTIN_VIEWS.items()]
    if value is None:
        return tuple(views)
    if not isinstance(value, dict):
        raise _fail("views", "give a mapping name -> {bands: [...]} or {expression: ...}")
    for name, item in value.items():
        where = f"views.{name}"
        _name(name, where)
        if name in BUILTIN_VIEWS:
            raise _fail(where, "is a built-in view; choose another name")
        if not isinstance(item, dict) or len(set(item) & {"bands", "expression"}) != 1:
            raise _fail(where, "give exactly one of bands: [...] or expression: '...'")
        unknown = set(item) - {"bands", "expression", "title"}
        if unknown:
            raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
        title = str(item.get("title", name))
        if "bands" in item:
            bands = _bands(item["bands"], f"{where}.bands")
            if len(bands) not in (1, 3):
                raise _fail(f"{where}.bands", "give 1 band (grey) or 3 bands (red, green, blue)")
            views.append(ViewSpec(name, title, bands))
        else:
            expression = item["expression"]
            if not isinstance(expression, str) or len(expression) > 200:
                raise _fail(f"{where}.expression", "give the expression as text (200 chars)")
            bands = check_expression(expression, f"{where}.expression")
            views.append(ViewSpec(name, title, bands, expression))
    return tuple(views)


def _path(root: Path, value: Any, field_name: str, *, must_exist: bool = True) -> Path:
    if not isinstance(value, str) or not value:
        raise _fail(field_name, f"give a path, not {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else root / path
    if must_exist and not path.exists():
        raise _fail(field_name, f"{path} not found")
    try:
        check_regular_file(path)
    except S2CloudsError as exc:
        raise _fail(field_name, str(exc)) from exc
    return path


def _images(root: Path, value: Any) -> tuple[ImageSpec, ...]:
    if not isinstance(value, list) or not value:
        raise _fail("images", "list at least one image ({id: ..., path: ...})")
    out, seen = [], set()
    for i, item in enumerate(value):
        where = f"images[{i}]"
        if isinstance(item, str):
            item = {"id": Path(item).stem, "path": item}
        if not isinstance(item, dict):
            raise _fail(where, "each image is a mapping with id and path")
        known = {"id", "path", "reference", "reference_scheme", "bands", "dataset", "window"}
        unknown = set(item) - known
        if unknown:
            raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
        image_id = _name(item.get("id"), f"{where}.id")
        if image_id in seen:
            raise _fail(f"{where}.id", f"{image_id!r} is listed twice")
        seen.add(image_id)
        if ("path" in item) == ("dataset" in item):
            raise _fail(where, "give either path (an image) or dataset (a dataset's sample)")
        sample = _dataset(root, item["dataset"], f"{where}.dataset") if "dataset" in item else None
        path = sample.path if sample else _path(root, item.get("path"), f"{where}.path")
        reference = None
        if item.get("reference") is not None:
            reference = _path(root, item["reference"], f"{where}.reference")
            if not reference.is_file():
                raise _fail(f"{where}.reference", f"{reference} is not a raster file")
        scheme = item.get("reference_scheme", "canonical")
        try:
            get_scheme(scheme)
        except (S2CloudsError, KeyError) as exc:
            raise _fail(f"{where}.reference_scheme", str(exc)) from exc
        bands = _bands(item["bands"], f"{where}.bands") if "bands" in item else None
        window = _window(item["window"], f"{where}.window") if "window" in item else None
        out.append(ImageSpec(image_id, path, reference, scheme, bands, sample, window))
    return tuple(out)


def _window(value: Any, where: str) -> tuple[int, int, int, int]:
    ok = (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and value[0] >= 0
        and value[1] >= 0
        and value[2] > 0
        and value[3] > 0
    )
    if not ok:
        raise _fail(where, f"give [row, col, height, width] in pixels, not {value!r}")
    row, col, height, width = value
    return row, col, height, width


def _dataset(root: Path, value: Any, where: str) -> DatasetSample:
    from s2clouds.datasets.registry import DATASETS

    if not isinstance(value, dict):
        raise _fail(where, "give {path: ..., index: N} and optionally kind and options")
    unknown = set(value) - {"path", "index", "kind", "options"}
    if unknown:
        raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
    path = _path(root, value.get("path"), f"{where}.path")
    index = value.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _fail(f"{where}.index", f"{index!r} is not a sample index (0, 1, ...)")
    kind = value.get("kind")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in DATASETS):
        raise _fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(DATASETS)}")
    options = value.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise _fail(f"{where}.options", "give a mapping of the reader's options")
    return DatasetSample(
        path, index, kind.lower() if kind else None, tuple(sorted(options.items()))
    )


def parse_project(root: Path, data: Any) -> Project:
    """A :class:`Project` from the parsed ``project.yaml`` of folder ``root``."""
    if not isinstance(data, dict):
        raise ProjectError(f"{PROJECT_FILE}: give a mapping (name, images, classes, ...)")
    known = {"name", "scheme", "users", "classes", "views", "images", "assistant"}
    unknown = set(data) - known
    if unknown:
        raise _fail(sorted(unknown)[0], f"unknown field (known: {', '.join(sorted(known))})")
    name = data.get("name", root.name)
    if not isinstance(name, str):
        raise _fail("name", f"{name!r} is not text")
    scheme = data.get("scheme", "canonical")
    try:
        scheme = get_scheme(scheme).name
    except (S2CloudsError, KeyError) as exc:
        raise _fail("scheme", str(exc)) from exc
    users = data.get("users", ["annotator"])
    if not isinstance(users, list) or not users:
        raise _fail("users", "list at least one user name")
    user_names = tuple(_name(u, f"users[{i}]") for i, u in enumerate(users))
    if len(set(user_names)) != len(user_names):
        raise _fail("users", "a user is listed twice")
    assistant = data.get("assistant") or {}
    if not isinstance(assistant, dict) or set(assistant) - {"bands", "rounds"}:
        raise _fail("assistant", "give a mapping with bands and/or rounds")
    rounds = assistant.get("rounds", 60)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= 1000:
        raise _fail("assistant.rounds", f"{rounds!r} is not a number of rounds in 1-1000")
    assistant_bands = (
        _bands(assistant["bands"], "assistant.bands") if "bands" in assistant else None
    )
    return Project(
        root=root,
        name=name,
        scheme=scheme,
        users=user_names,
        classes=_classes(data.get("classes")),
        views=_views(data.get("views")),
        images=_images(root, data.get("images")),
        assistant_bands=assistant_bands,
        assistant_rounds=rounds,
    )


def load_project(folder: str | Path) -> Project:
    """The project in ``folder`` (or the folder of a ``project.yaml`` given directly)."""
    import yaml

    path = Path(folder)
    if path.is_file() and path.name == PROJECT_FILE:
        path = path.parent
    config = path / PROJECT_FILE
    if not config.is_file():
        raise ProjectError(f"{config} not found; a project is a folder with a {PROJECT_FILE}")
    check_regular_file(config)
    with open(config, "rb") as handle:
        text = handle.read(MAX_CONFIG_BYTES + 1)
    if len(text) > MAX_CONFIG_BYTES:
        raise ProjectError(f"{config} is larger than {MAX_CONFIG_BYTES >> 20} MB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{config} is not valid YAML: {exc}") from exc
    return parse_project(path.resolve(), data)
