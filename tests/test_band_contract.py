"""The band-source contract, read from the sources: code above ``io/`` asks a band source
through :class:`~s2clouds.io.bands.BandSource`, never by its type, and every band-source
class anywhere in the package has every member of the protocol. rasterio's column-first
``Window`` is made in one place only, :meth:`s2clouds.io.grid.Window.to_rasterio`."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

import s2clouds
from s2clouds.io.bands import BandSource

PACKAGE = Path(s2clouds.__file__).parent
IO = PACKAGE / "io"
SOURCES = sorted(PACKAGE.rglob("*.py"))

#: the members every band source has (the protocol's public names)
PROTOCOL_MEMBERS = sorted(n for n in vars(BandSource) if not n.startswith("_"))


def band_source_classes() -> dict[str, Path]:
    """Every class in the package that is a band source (defines ``read_group``), and the
    protocol itself, by name."""
    found = {"BandSource": IO / "bands.py"}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and "read_group" in _members(node):
                found[node.name] = path
    return found


def _members(node: ast.ClassDef) -> set[str]:
    """Names a class body defines: methods, properties and annotated fields."""
    names = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    names |= {
        n.target.id
        for n in node.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    return names


def _named(node: ast.expr) -> set[str]:
    """The class names an ``isinstance`` type argument mentions (``A``, ``m.A``, ``(A, B)``,
    ``A | B``)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    if isinstance(node, ast.Tuple):
        return set().union(*(_named(e) for e in node.elts))
    if isinstance(node, ast.BinOp):
        return _named(node.left) | _named(node.right)
    return set()


def type_checks(source: str, names: set[str]) -> list[str]:
    """``isinstance``/``issubclass`` calls in ``source`` on any of ``names``, as
    ``"line: call"``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
            and _named(node.args[1]) & names
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_sees_type_checks_on_band_sources() -> None:
    names = {"RasterBand", "ArrayBand"}
    code = (
        "isinstance(s, RasterBand)\n"
        "isinstance(s, (int, scene.ArrayBand))\n"
        "isinstance(s, ArrayBand | None)\n"
        "isinstance(s, Grid)\n"
    )
    assert [c.split(":")[0] for c in type_checks(code, names)] == ["1", "2", "3"]


def test_band_source_classes_are_found() -> None:
    classes = band_source_classes()
    assert {"BandSource", "RasterBand", "ArrayBand", "WarpedBand"} <= set(classes)


def test_no_type_checks_on_band_sources_above_io() -> None:
    names = set(band_source_classes())
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{call}"
        for path in SOURCES
        if IO not in path.parents
        for call in type_checks(path.read_text(encoding="utf-8"), names)
    ]
    assert offending == [], "ask the BandSource protocol instead of the type"


@pytest.mark.parametrize("name", sorted(set(band_source_classes()) - {"BandSource"}))
def test_every_band_source_has_every_protocol_member(name: str) -> None:
    path = band_source_classes()[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)
    # what the class defines, what it inherits (a mixin such as io.bands.OnFile) and its
    # dataclass fields
    module = importlib.import_module(
        "s2clouds." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    )
    cls = getattr(module, name)
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    members = _members(node) | set(dir(cls)) | fields
    assert "read" in PROTOCOL_MEMBERS and "group" in PROTOCOL_MEMBERS
    assert sorted(set(PROTOCOL_MEMBERS) - members) == []


def rasterio_windows(source: str) -> list[str]:
    """Where ``source`` imports or names rasterio's ``Window``, as ``"line: code"``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "rasterio.windows":
            if any(a.name == "Window" for a in node.names):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "Window"
            and ast.unparse(node.value) == "rasterio.windows"
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_rasterio_windows_are_made_only_by_window_to_rasterio() -> None:
    assert rasterio_windows("from rasterio.windows import Window as W\nrasterio.windows.Window(1)")
    made = [p for p in SOURCES if rasterio_windows(p.read_text(encoding="utf-8"))]
    assert [str(p.relative_to(PACKAGE)) for p in made] == ["io/grid.py"]
