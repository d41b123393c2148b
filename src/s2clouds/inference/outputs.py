"""The files a prediction writes, named in one place: the mask, its probabilities, the
quicklook, a batch's masks and run log; and the checks made on them before any work."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from s2clouds.inference.options import OutputOptions
from s2clouds.io.paths import check_outputs
from s2clouds.io.scene import Scene
from s2clouds.io.write import check_writable

#: a batch's mask of a scene: ``<product_id>_cloudmask.tif``
MASK_SUFFIX = "_cloudmask.tif"
#: the probabilities beside a mask ``<stem>.tif``: ``<stem>.proba.tif``
PROBA_SUFFIX = ".proba.tif"
#: a batch's run log, in its output folder
RUN_LOG = "s2clouds_run.json"
#: how errors name the mask output
MASK_OUTPUT = "the mask (output=)"
#: how errors name the quicklook output
QUICKLOOK_OUTPUT = "the quicklook (quicklook=)"
UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._+-]")


def mask_name(product_id: str) -> str:
    """``<product_id>_cloudmask.tif``, with characters unsafe in file names replaced by ``_``."""
    return UNSAFE_NAME_CHARACTERS.sub("_", product_id) + MASK_SUFFIX


def probabilities_path(output: Path) -> Path:
    """Where the probabilities of the mask ``output`` go: ``<stem>.proba.tif`` beside it."""
    return output.with_name(output.stem + PROBA_SUFFIX)


def is_own_output(path: str | Path) -> bool:
    """True for files that s2clouds writes in a batch (masks and probabilities), never inputs."""
    name = Path(path).name
    return name.endswith(MASK_SUFFIX) or name.endswith(probabilities_path(Path(MASK_SUFFIX)).name)


def is_finished(output: Path, options: OutputOptions) -> bool:
    """Outputs are written atomically, so a present file is complete; probabilities count too."""
    return output.is_file() and (not options.probabilities or probabilities_path(output).is_file())


def planned_outputs(output: Path, options: OutputOptions) -> dict[str, Path | None]:
    """The files a prediction writes, by how errors name them (None: not written)."""
    return {
        MASK_OUTPUT: output,
        "the probabilities (probabilities=, named after output=)": (
            probabilities_path(output) if options.probabilities else None
        ),
        QUICKLOOK_OUTPUT: options.quicklook,
    }


def check_scene_outputs(
    scene: Scene,
    output: Path,
    options: OutputOptions,
    *,
    inputs: Iterable[str | Path] = (),
    extra: Mapping[str, Path | None] | None = None,
) -> None:
    """Before any work: refuse outputs (:func:`planned_outputs` and ``extra``) that are a file
    of ``scene`` or of ``inputs`` (see :func:`~s2clouds.io.paths.check_outputs`), that
    coincide, or whose folder is missing or not writable (the writers refuse an existing mask
    without ``options.overwrite``)."""
    outputs = {**planned_outputs(output, options), **(extra or {})}
    check_outputs(outputs, [*scene.input_files(), *inputs])
    check_writable(output, overwrite=options.overwrite)
    for option, path in outputs.items():
        if path is not None and option != MASK_OUTPUT:
            check_writable(Path(path))
