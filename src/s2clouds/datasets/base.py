"""The contract every dataset reader follows.

A dataset is a sized, indexable collection of samples. A sample is a dict with fixed keys:

``image``  (C, H, W) float32, reflectance (unitless, 0-1) unless the dataset states otherwise
``mask``   (H, W) integer labels in the dataset's own scheme (``None`` for unlabelled samples)
``mask_canonical`` (H, W) uint8 canonical labels (0 clear, 1 thick, 2 thin, 3 shadow, 255 no
           data); present when the reader was created with ``canonical=True``
``valid``  (H, W) bool, True where the pixel holds real data and a usable label
``bands``  tuple of band names in ``image`` order
``crs``, ``transform``  georeference where the dataset has it, else None
``meta``   dict of ids, tags, dates and anything else the dataset records

Readers need no torch; when torch is installed the objects also work as a
``torch.utils.data.Dataset`` because they implement ``__len__`` and ``__getitem__``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from s2clouds.errors import DatasetError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Sample = dict[str, Any]
SAMPLE_KEYS = ("image", "mask", "valid", "bands", "crs", "transform", "meta")


class CloudDataset(ABC):
    """Base class of the dataset readers."""

    #: short name used by ``s2clouds datasets`` and ``s2clouds benchmark``
    name: ClassVar[str]
    #: label scheme name (see ``s2clouds.labels``) of the dataset's own masks
    label_scheme: ClassVar[str]
    #: the benchmark protocol that scores this dataset by default
    #: (see :func:`s2clouds.benchmark.protocols.make_protocol`)
    protocol: ClassVar[str] = "cloudsen12"

    @classmethod
    def stored_layer(cls, name: str) -> tuple[str, str]:
        """The key and label scheme of the stored mask layer ``name`` (any spelling) that
        ``s2clouds benchmark`` scores as ``layer:NAME``. :class:`DatasetError` when there is
        no such mask layer; this default stores none."""
        raise DatasetError(f"the {cls.name} dataset stores no mask layers (layer:{name})")

    @classmethod
    def benchmark_options(cls, splits: Sequence[str], layers: Sequence[str]) -> dict[str, Any]:
        """Reader options for ``s2clouds benchmark``: the ``splits`` to score and the stored
        ``layers`` it scores. This default reads no splits and refuses layers."""
        if layers:
            cls.stored_layer(layers[0])
        return {}

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """True when ``path`` looks like this dataset's layout (cheap: names, not data)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Sample: ...

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"sample index {index} out of range for {n} samples")
        return index % n

    def summary(self) -> dict[str, Any]:
        """Counts, bands, splits and anything else ``s2clouds datasets info`` prints."""
        return {"dataset": self.name, "samples": len(self)}

    def plot(
        self, index: int, *, layers: Sequence[str] | None = None, stretch: str = "percentile"
    ) -> Figure:
        """RGB quicklook beside the mask (and other layers) for sample ``index``.

        ``layers``: further panels by name (``"valid"``, a key of ``sample["layers"]``);
        ``stretch``: ``"percentile"`` or ``"fixed"`` (see :func:`s2clouds.viz.rgb_quicklook`).
        Returns a matplotlib ``Figure`` (no pyplot state).
        """
        from s2clouds.viz import plot_sample

        return plot_sample(self[index], f"{self.name} #{index}", layers, stretch=stretch)


def require_path(path: Path | str, what: str) -> Path:
    """Return ``path`` as a Path or raise :class:`DatasetError` naming what is missing."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{what} not found: {p}; check the path or download the dataset first")
    return p


def as_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """Reader options that take names (splits, seasons, layers) as a tuple of strings.

    A single name given as a plain string (``"spring"``) is one name, not a sequence of letters.
    """
    return (names,) if isinstance(names, str) else tuple(names)
