"""The layers of s2clouds, read from the imports of every module (also those inside
functions): arrows point down only, and no two files import each other (directly or round a
loop). See docs/architecture.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import s2clouds

PACKAGE = Path(s2clouds.__file__).parent

#: layer of each top-level part of the package, lowest first; a module may import its own
#: layer and those below it
LAYERS: dict[str, int] = {
    "errors": 0,
    "_optional": 0,
    "resources": 0,
    "bands": 0,
    "radiometry": 0,
    "resample": 0,
    "registry": 0,
    "labels": 1,
    "io": 2,
    "viz": 2,
    "datasets": 3,
    "models": 4,
    "train": 5,
    "inference": 5,
    "benchmark": 5,
    "mosaic": 5,
    "app": 6,
    "cli": 7,
}


#: none left: the model registry names its built-in models by module (``Registry(builtins=)``)
#: and imports them on first lookup, as it loads plugins, so no two files import each other
KNOWN_LOOPS: list[list[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The s2clouds modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a
    module, else ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("s2clouds"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("s2clouds"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else str(node.module))
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_every_part_has_a_layer() -> None:
    parts = {part(m) for m in MODULES if m != "s2clouds"}
    assert parts <= set(LAYERS), f"give these a layer: {sorted(parts - set(LAYERS))}"


def test_arrows_point_down() -> None:
    upward = [
        f"{m} ({part(m)}) imports {i} ({part(i)})"
        for m, path in MODULES.items()
        if m != "s2clouds"
        for i in imports_of(path)
        if part(i) in LAYERS and LAYERS[part(i)] > LAYERS[part(m)]
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = {m: {i for i in imports_of(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    graph["s2clouds"] = set()  # the package itself imports nothing eagerly but its version
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == KNOWN_LOOPS


def test_the_architecture_page_gives_every_part_its_layer() -> None:
    """docs/architecture.md's layer table names every part of ``LAYERS`` at its layer."""
    page = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    documented: dict[str, int] = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r"`([\w/]+?)(?:\.py|/)?`", cells[1]):
                documented[name] = int(cells[0])
    assert documented == LAYERS
