"""Predict canonical cloud/shadow masks for one scene.

A single scene is a batch of one job (see :mod:`s2clouds.inference.batch` for many): the
scene is opened (headers only), its outputs checked, its model built, and its windows handed
to an engine: :class:`~s2clouds.inference.engine.SerialEngine` in this process by default, or
a Dask cluster (:mod:`s2clouds.inference.distributed`). The client writes each window as it
arrives (:func:`~s2clouds.inference.sink.run_scenes` over
:func:`~s2clouds.inference.sink.run_jobs`, the client loop of every driver), so memory grows
with the block size, not with the scene.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np

from s2clouds.errors import BandError, OutputError
from s2clouds.inference.distributed import ClusterOptions, open_engine
from s2clouds.inference.engine import make_job
from s2clouds.inference.options import PredictOptions
from s2clouds.inference.outputs import check_scene_outputs
from s2clouds.inference.records import PredictionResult, SceneRecord
from s2clouds.inference.sink import run_scenes
from s2clouds.inference.window import prepare_scene
from s2clouds.io.scene import Scene
from s2clouds.io.scenes import read_scene
from s2clouds.viz import TRUE_COLOUR_BANDS

if TYPE_CHECKING:
    import xarray as xr

#: what a prediction reports (the Dask dashboard link): silent unless a handler is set
logger = logging.getLogger(__name__)


def predict_scene(
    scene: Scene,
    output: str | Path,
    options: PredictOptions | None = None,
    *,
    cluster: ClusterOptions | None = None,
) -> PredictionResult:
    """Predict an opened scene and write the mask COG (and probabilities/quicklook).

    The windows are computed in this process unless ``cluster`` asks for Dask (see
    :func:`~s2clouds.inference.distributed.wants_cluster`); the Dask dashboard link, when there
    is one, is logged (INFO).
    Errors are raised, and nothing appears at ``output`` after one.
    """
    options = options or PredictOptions()
    output = Path(output)
    check_scene_outputs(scene, output, options.output)
    whole = scene  # every band: the quicklook is true colour whatever bands the model reads
    if options.output.quicklook is not None and not set(TRUE_COLOUR_BANDS) <= set(whole.bands):
        raise BandError(
            f"{whole.product_id}: the quicklook (quicklook=) needs B02, B03 and B04; the input "
            f"has {', '.join(whole.bands)}. Leave quicklook= out",
            param="quicklook",
        )
    scene, model = prepare_scene(scene, options.run)
    job = make_job(0, scene, model, output, options.run, probabilities=options.output.probabilities)
    source = str(scene.meta.get("path") or scene.product_id)
    record = SceneRecord(input=source, output=str(output))
    with open_engine(cluster, len(job.windows)) as engine:
        if engine.dashboard_link:
            logger.info(
                "%d windows on %s: %s", len(job.windows), engine.description, engine.dashboard_link
            )
        run_scenes([job], [record], engine, options)
    if record.exception is not None:
        raise record.exception
    if record.result is None:
        raise OutputError(f"{source}: the prediction did not finish; run it again")
    if options.output.quicklook is not None:
        from s2clouds.inference.quicklook import write_quicklook

        record.result.quicklook = write_quicklook(whole, output, options.output.quicklook)
    return record.result


@overload
def predict(
    source: xr.DataArray,
    output: str | Path | None = None,
    options: PredictOptions | None = None,
    *,
    cluster: ClusterOptions | None = None,
) -> xr.DataArray: ...


@overload
def predict(
    source: str | Path | np.ndarray,
    output: str | Path,
    options: PredictOptions | None = None,
    *,
    cluster: ClusterOptions | None = None,
) -> PredictionResult: ...


def predict(
    source: str | Path | np.ndarray | xr.DataArray,
    output: str | Path | None = None,
    options: PredictOptions | None = None,
    *,
    cluster: ClusterOptions | None = None,
) -> PredictionResult | xr.DataArray:
    """Open ``source`` (see :func:`~s2clouds.io.scenes.read_scene`) as ``options.read`` says
    and predict its mask (see
    :func:`predict_scene`; in this process unless ``cluster`` asks for Dask).

    An ``xarray.DataArray`` (band, y, x) with a CRS gives back a DataArray: the (y, x) uint8
    canonical ``mask`` on its coordinates (attrs: model, class shares, ``flag_values``); the
    mask COG is written to ``output`` too when one is given (else to a temporary file).
    """
    from s2clouds.io.dataarray import is_dataarray

    options = options or PredictOptions()
    scene = read_scene(source, **options.read.as_kwargs())
    if is_dataarray(source):
        return _predict_dataarray(source, scene, output, options, cluster)
    if output is None:
        raise OutputError("give the output path of the mask (only a DataArray input needs none)")
    return predict_scene(scene, output, options, cluster=cluster)


def _predict_dataarray(
    source: xr.DataArray,
    scene: Scene,
    output: str | Path | None,
    options: PredictOptions,
    cluster: ClusterOptions | None,
) -> xr.DataArray:
    """Predict ``scene`` (read from ``source``) into ``output`` or a temporary COG and return
    the mask as a DataArray on ``source``'s coordinates."""
    import tempfile

    import rasterio

    from s2clouds.io.dataarray import mask_dataarray

    with tempfile.TemporaryDirectory(prefix="s2clouds-xr-") as tmp:
        target = Path(output) if output is not None else Path(tmp) / "mask.tif"
        result = predict_scene(scene, target, options, cluster=cluster)
        with rasterio.open(result.output) as ds:
            mask = ds.read(1)
    attrs = {
        "model": result.model,
        "class_fractions": str(result.class_fractions),
        "valid_fraction": result.valid_fraction,
        **({"path": str(output)} if output is not None else {}),
    }
    return mask_dataarray(mask, source, attrs)
