"""One importer of optional packages: the error says which extra installs a missing one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import s2clouds
from s2clouds._optional import install_hint, require
from s2clouds.errors import DatasetError, S2CloudsError

PACKAGE = Path(s2clouds.__file__).parent


def test_require_returns_the_module() -> None:
    import json

    assert require("json", "plot") is json


def test_a_missing_package_names_its_extra() -> None:
    with pytest.raises(DatasetError) as info:
        require("s2clouds_no_such_module.sub", "datasets", purpose="reading x", error=DatasetError)
    message = str(info.value)
    assert message.startswith("reading x needs s2clouds_no_such_module, which is not installed")
    assert message.endswith('install it with: pip install "s2clouds[datasets]"')
    with pytest.raises(S2CloudsError, match=r'pip install "s2clouds\[plot\]"'):
        require("s2clouds_no_such_module", "plot")
    assert install_hint("search") == 'pip install "s2clouds[search]"'


def test_every_install_hint_comes_from_the_helper() -> None:
    """No module but ``_optional`` spells out an install command in a string literal."""
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_optional.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if literal and id(node) not in docs and "pip install" in node.value:
                spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert spelled == []
