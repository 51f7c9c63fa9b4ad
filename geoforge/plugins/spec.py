"""What to load (:class:`PluginSpec`), what was loaded (:class:`PluginInfo`) and the failure
that ``--strict-plugins`` makes fatal (:class:`PluginFailure`)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from geoforge.errors import GeoforgeError, UsageError

ENTRY_POINT_GROUP = "geoforge"
ENV_VAR = "GEOFORGE_PLUGINS"
#: Default wall-clock budget, in seconds, of one perturbation for one positive.
DEFAULT_TIME_BUDGET = 10.0


@dataclass(frozen=True)
class PluginSpec:
    """Which plugins to load; picklable, so worker processes load the same list.

    ``paths`` are plugin files, ``modules`` importable module names, ``disabled`` names to
    skip; ``entry_points`` and ``env`` say whether to read the entry point group and the
    ``GEOFORGE_PLUGINS`` variable. With ``strict`` (``--strict-plugins``), a plugin failure
    during a run (in propose, garbage, a time budget, in close) raises PluginFailure at once
    instead of being counted; failures while loading are reported by the caller
    (:func:`geoforge.cli.options.check_plugins`).
    """

    paths: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    entry_points: bool = True
    env: bool = True
    strict: bool = False

    @staticmethod
    def from_cli(plugins: Iterable[str], disabled: Iterable[str], strict: bool = False) -> PluginSpec:
        """Split ``--plugin`` values into files (ending in ``.py`` or holding a path separator)
        and modules; a file named twice (``p.py`` and ``./p.py``) is loaded once. Raises
        UsageError (exit 2) for a file that does not exist, for a directory (also one named
        without a slash, unless it holds ``__init__.py`` and so is a package), and for a module
        that cannot be found: a mistyped name is bad usage, not a plugin that failed (a module
        that is found but fails to import is a plugin failure)."""

        plugins = list(plugins)
        files = [p for p in plugins if p.endswith(".py") or os.sep in p]
        for path in files:
            if Path(path).is_dir():
                raise UsageError(
                    f"--plugin {path}: is a directory, expected a plugin file (PATH.py) or a module"
                )
            if not Path(path).is_file():
                raise UsageError(f"--plugin {path}: no such file")
        paths: list[str] = []
        for path in files:  # each file once, however it is spelt
            if all(Path(path).resolve() != Path(p).resolve() for p in paths):
                paths.append(path)
        modules = tuple(p for p in plugins if p not in files)
        for module in modules:
            if Path(module).is_dir() and not Path(module, "__init__.py").is_file():
                # `plugins`, a folder here written without a slash: not a package to import
                raise UsageError(
                    f"--plugin {module}: is a directory, expected a plugin file (PATH.py) or a module"
                )
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a missing parent package, an empty name
                found = False
            if not found:
                raise UsageError(
                    f"--plugin {module}: no such module (expected PATH.py or an importable module)"
                )
        return PluginSpec(tuple(paths), modules, tuple(disabled), strict=strict)


@dataclass
class PluginInfo:
    """One plugin as loaded: ``name``, ``version``, ``source`` (``built-in``, ``entry point``,
    ``file``, ``module`` or ``environment``), ``origin`` (module path or file), what it
    registered by hook, ``error`` if it failed, and ``provenance``: for each perturbation that
    declares one, its ``provenance`` mapping (e.g. an LLM plugin's model and prompt hash; never
    secrets), which goes into the corpus manifest. ``distribution`` is the installed package
    that provides the plugin (``""`` for a plain file); it and its version are known even for a
    plugin that fails to import. ``sha256`` is the digest of the source file of a plugin that
    no installed distribution provides (a ``--plugin`` file, a module on the path), whose
    version string rarely changes with its code: ``generate --resume`` compares it."""

    name: str
    version: str
    source: str
    origin: str
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)
    distribution: str = ""
    sha256: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict; ``provenance`` only where a perturbation declared one."""
        out: dict[str, object] = {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "source": self.source,
            "origin": self.origin,
            "registers": self.registers,
            "error": self.error,
        }
        if self.provenance:
            out["provenance"] = self.provenance
        if self.sha256:
            out["sha256"] = self.sha256
        return out


class PluginFailure(GeoforgeError):
    """A plugin failed and ``--strict-plugins`` makes that fatal (exit 1)."""
