"""One registry type for everything s2clouds looks up by name: :class:`Registry`.

Models, dataset readers, benchmark protocols, quality scorers, merge rules, training
architectures, scene openers, CLI subcommands and signing hooks are each a :class:`Registry`.
They share

* one **name rule** (:func:`normalise`): case, surrounding blanks and ``_`` versus ``-`` do not
  matter (``Tiny_UNet`` finds ``tiny-unet``); listings show names as registered;
* one **duplicate policy**: a second entry under a name is refused
  (:class:`~s2clouds.errors.RegistryError`) unless ``replace=True``;
* one **error for unknown names**: :class:`~s2clouds.errors.UnknownNameError`, which lists the
  known names and suggests a close one;
* **lazy entries**: an entry may be a loader (``"module:attribute"`` or a function) called on
  first lookup, so that a registry lists everything without importing it;
* **plugins**: a registry with an entry-point ``group`` (``s2clouds.models``, ...) reads that
  group of the installed packages' metadata once, on its first lookup, and adds each entry
  point as a lazy entry under the entry point's name (as rasterio's ``rio_plugins``). Names
  that the registry already has win over plugins (the plugin is skipped with a warning); a
  plugin that fails to load raises :class:`~s2clouds.errors.PluginError` when it is looked
  up, and is skipped with a warning when the whole registry is listed. See docs/plugins.md.
"""

from __future__ import annotations

import difflib
import importlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from s2clouds.errors import PluginError, RegistryError, S2CloudsError, UnknownNameError

T = TypeVar("T")


def normalise(name: str) -> str:
    """The lookup key of ``name``: stripped, lower case, ``_`` read as ``-``."""
    return str(name).strip().lower().replace("_", "-")


def load_attribute(target: str) -> Any:
    """The object ``"package.module:attribute.sub"`` names (the module is imported)."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"{target!r} is not module:attribute")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


@dataclass
class _Entry:
    """One name of a registry: the ``name`` as registered, the ``value`` once loaded, else
    the ``loader`` that makes it; ``plugin`` names the entry point it came from."""

    name: str
    value: Any = None
    loader: Callable[[], Any] | None = None
    plugin: str | None = None


class Registry(Generic[T]):
    """Named entries of one kind, in registration order (built-in entries, then plugins).

    ``kind`` names the entries in messages (``"model"``, ``"dataset kind"``). ``builtins``:
    ``"module"`` imported on first lookup, whose import registers the built-in entries (so the
    registry's own module need not import them). ``group``: the entry-point group read once on
    first lookup (None: no plugins). ``adapt(name, loaded)`` turns what a lazy entry or entry
    point loads into an entry (check its type, build it); default: taken as it is. ``hint`` is
    added to the unknown-name message (what else may be given).
    """

    def __init__(
        self,
        kind: str,
        *,
        builtins: str | None = None,
        group: str | None = None,
        adapt: Callable[[str, Any], T] | None = None,
        hint: str = "",
    ) -> None:
        self.kind, self.group, self.hint = kind, group, hint
        self._builtins = builtins
        self._adapt = adapt
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._started = self._starting = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ registering
    def register(self, name: str, value: T, *, replace: bool = False) -> T:
        """Add ``value`` under ``name`` and return it; :class:`RegistryError` when the name
        (after :func:`normalise`) is taken, unless ``replace``."""
        self._add(_Entry(name, value=value), replace)
        return value

    def register_lazy(
        self, name: str, target: str | Callable[[], Any], *, replace: bool = False
    ) -> None:
        """Add an entry made on first lookup: ``target`` is ``"module:attribute"`` (imported
        then) or a function of no arguments; what it gives passes through ``adapt``."""
        loader = (lambda: load_attribute(target)) if isinstance(target, str) else target
        self._add(_Entry(name, loader=loader), replace)

    def alias(self, alias: str, name: str) -> None:
        """Let ``alias`` find the entry ``name`` (aliases are not listed)."""
        self._aliases[normalise(alias)] = normalise(name)

    def unregister(self, name: str) -> None:
        """Remove the entry ``name`` (nothing when there is none)."""
        self._entries.pop(normalise(name), None)

    def _add(self, entry: _Entry, replace: bool) -> None:
        key = normalise(entry.name)
        if not key:
            raise RegistryError(f"a {self.kind} needs a name")
        old = self._entries.get(key)
        if old is not None and not replace:
            raise RegistryError(
                f"{self.kind} {entry.name!r} is registered twice (as {old.name!r} first); "
                "give another name, or replace=True to replace it"
            )
        self._entries[key] = entry

    # ------------------------------------------------------------------ looking up
    def key(self, name: str) -> str | None:
        """The key of the entry ``name`` or alias finds, None when there is none."""
        self._start()
        key = normalise(name)
        key = self._aliases.get(key, key)
        return key if key in self._entries else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.key(name) is not None

    def __getitem__(self, name: str) -> T:
        key = self.key(name)
        if key is None:
            raise self.unknown(name)
        return self._value(self._entries[key])

    def get(self, name: str, default: T | None = None) -> T | None:
        """The entry ``name``, or ``default`` when there is none."""
        key = self.key(name)
        return default if key is None else self._value(self._entries[key])

    def name_of(self, name: str) -> str:
        """The registered spelling of ``name`` (or of the entry its alias finds)."""
        key = self.key(name)
        if key is None:
            raise self.unknown(name)
        return self._entries[key].name

    def names(self) -> list[str]:
        """Every name as registered, in order (nothing is loaded)."""
        self._start()
        return [entry.name for entry in self._entries.values()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def values(self) -> list[T]:
        """Every entry, loaded; a plugin that fails to load is skipped with a warning."""
        return [value for _, value in self.items()]

    def items(self) -> list[tuple[str, T]]:
        """``(name as registered, entry)`` of every entry, loaded; a plugin that fails to
        load is skipped with a warning."""
        self._start()
        found: list[tuple[str, T]] = []
        for entry in list(self._entries.values()):
            try:
                found.append((entry.name, self._value(entry)))
            except PluginError as exc:
                if entry.plugin is None:
                    raise
                warnings.warn(str(exc), stacklevel=3)
        return found

    def unknown(self, name: str, *, param: str | None = None) -> UnknownNameError:
        """The error for the unknown ``name``: what is known, and a close match; ``param``:
        the parameter that gave the name (the command line names its flag)."""
        known = self.names()
        close = difflib.get_close_matches(normalise(name), [normalise(k) for k in known], n=1)
        suggestion = f" (did you mean {self._entries[close[0]].name!r}?)" if close else ""
        hint = f" {self.hint}" if self.hint else ""
        return UnknownNameError(
            f"unknown {self.kind} {name!r}; available: {', '.join(known) or 'none'}"
            f"{suggestion}{hint}",
            param=param,
        )

    # ------------------------------------------------------------------ plugins
    def rescan(self) -> None:
        """Forget the plugins read so far; the entry-point group is read again on the next
        lookup (after installing a package in a running process, and in tests)."""
        for key in [k for k, e in self._entries.items() if e.plugin is not None]:
            del self._entries[key]
        self._started = False

    def _start(self) -> None:
        """Import the built-in entries and read the plugins, once (other threads wait; the
        thread doing it, re-entering from the built-in module, sees what is there so far)."""
        if self._started:
            return
        with self._lock:
            if self._started or self._starting:
                return
            self._starting = True
            try:
                if self._builtins is not None:
                    importlib.import_module(self._builtins)
                if self.group is not None:
                    self._read_entry_points(self.group)
                self._started = True  # not when the import failed: tried (and raised) again
            finally:
                self._starting = False

    def _read_entry_points(self, group: str) -> None:
        from importlib import metadata

        for point in sorted(metadata.entry_points(group=group), key=lambda p: p.name):
            if normalise(point.name) in self._entries:
                warnings.warn(
                    f"the {self.kind} plugin {point.name!r} ({point.value}, entry point group "
                    f"{group}) is skipped: s2clouds already has a {self.kind} of that name",
                    stacklevel=3,
                )
                continue
            self._entries[normalise(point.name)] = _Entry(
                point.name, loader=point.load, plugin=f"{point.value} (entry point group {group})"
            )

    def _value(self, entry: _Entry) -> T:
        if entry.loader is not None:
            try:
                loaded = entry.loader()
                entry.value = self._adapt(entry.name, loaded) if self._adapt else loaded
            except S2CloudsError:
                raise
            except (ImportError, AttributeError, ValueError, TypeError) as exc:
                where = entry.plugin or "its module"
                raise PluginError(
                    f"cannot load the {self.kind} {entry.name!r} from {where}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            entry.loader = None
        value: T = entry.value
        return value
