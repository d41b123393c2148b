"""Optional packages: one importer that says which extra installs a missing one."""

from __future__ import annotations

import importlib
from types import ModuleType

from s2clouds.errors import S2CloudsError


def install_hint(extra: str) -> str:
    """``pip install "s2clouds[extra]"``: the command that installs ``extra``."""
    return f'pip install "s2clouds[{extra}]"'


def require(
    module: str,
    extra: str,
    *,
    purpose: str = "this",
    error: type[S2CloudsError] = S2CloudsError,
) -> ModuleType:
    """The module ``module`` (imported on first use), or ``error`` naming what needs it
    (``purpose``), the missing package and :func:`install_hint` of ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise error(
            f"{purpose} needs {module.split('.')[0]}, which is not installed ({exc}); install "
            f"it with: {install_hint(extra)}"
        ) from exc
