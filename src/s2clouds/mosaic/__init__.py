"""Cloud-free composites of many acquisitions: warp onto one grid, score, merge.

* :mod:`~s2clouds.mosaic.inputs`: inputs (paths, globs, ``@list``, STAC items or folders of
  them) opened through :func:`~s2clouds.io.scenes.read_scene`, with their acquisition dates.
* :mod:`~s2clouds.mosaic.warp`: the target grid and reading any input onto it.
* :mod:`~s2clouds.mosaic.quality`: per-pixel quality scores, a registry of named scorers.
* :mod:`~s2clouds.mosaic.merge`: merge rules over a window stack ``(T, C, H, W)``.
* :mod:`~s2clouds.mosaic.composite`: the run (windows, Dask, resume, outputs).
"""
