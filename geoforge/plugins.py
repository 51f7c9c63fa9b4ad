"""Loading plugins and calling them safely: the one typed entry point to pluggy.

Plugins come from, in this order: the entry point group ``geoforge`` (the built-in
perturbations are registered there too), the ``GEOFORGE_PLUGINS`` environment variable
(``os.pathsep``-separated file paths or module names) and ``--plugin PATH.py|module``.
``--no-plugin NAME`` skips one by name (an entry point's name, a module's name or a file's
stem). A plugin that fails to import, has a misspelt hook (pluggy's ``check_pending``) or raises
while registering is reported with its name and the exception, skipped and counted; the run
goes on. Like tox's plugin manager, :class:`PluginHost` wraps each hook in a typed method so
the rest of geoforge never calls ``pm.hook`` directly.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pluggy

from geoforge import hookspecs
from geoforge.perturb import Candidate, CaptionCandidate, ImageCandidate, Perturbation, Positive

ENTRY_POINT_GROUP = "geoforge"
ENV_VAR = "GEOFORGE_PLUGINS"


@dataclass(frozen=True)
class PluginSpec:
    """Which plugins to load; picklable, so worker processes load the same list.

    ``paths`` are plugin files, ``modules`` importable module names, ``disabled`` names to
    skip; ``entry_points`` and ``env`` say whether to read the entry point group and the
    ``GEOFORGE_PLUGINS`` variable.
    """

    paths: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    entry_points: bool = True
    env: bool = True

    @staticmethod
    def from_cli(plugins: Iterable[str], disabled: Iterable[str]) -> PluginSpec:
        """Split ``--plugin`` values into files (ending in ``.py`` or existing paths) and modules."""
        plugins = list(plugins)
        paths = tuple(p for p in plugins if p.endswith(".py") or os.sep in p)
        modules = tuple(p for p in plugins if p not in paths)
        return PluginSpec(paths, modules, tuple(disabled))


@dataclass
class PluginInfo:
    """One plugin as loaded: ``name``, ``version``, ``source`` (``built-in``, ``entry point``,
    ``file``, ``module`` or ``environment``), ``origin`` (module path or file), what it
    registered by hook, and ``error`` if it failed."""

    name: str
    version: str
    source: str
    origin: str
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "origin": self.origin,
            "registers": self.registers,
            "error": self.error,
        }


class PluginHost:
    """Loads plugins per a :class:`PluginSpec` and calls their hooks with failures isolated.

    ``perturbations`` maps names to registered perturbations; ``failures`` counts failures by
    ``"plugin: stage"``; ``messages`` holds one line per distinct failure (reported once).
    """

    def __init__(self, spec: PluginSpec | None = None) -> None:
        self.spec = spec or PluginSpec()
        self.pm = pluggy.PluginManager("geoforge")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.perturbations: dict[str, Perturbation] = {}
        self.owner: dict[str, str] = {}
        self.failures: Counter[str] = Counter()
        self.messages: list[str] = []
        self._load()

    # --- loading ---------------------------------------------------------------------------

    def _fail(self, info: PluginInfo, stage: str, exc: BaseException) -> None:
        message = f"plugin {info.name} ({info.origin}) failed {stage}: {type(exc).__name__}: {exc}"
        info.error = info.error or message
        self.failures[f"{info.name}: {stage}"] += 1
        if message not in self.messages:
            self.messages.append(message)

    def _sources(self) -> list[tuple[str, str, str, Callable[[], ModuleType], str | None]]:
        found: list[tuple[str, str, str, Callable[[], ModuleType], str | None]] = []
        if self.spec.entry_points:
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                dist = ep.dist.name if ep.dist else ""
                source = "built-in" if dist == "geoforge" else "entry point"
                found.append((ep.name, source, ep.value, ep.load, ep.dist.version if ep.dist else None))
        env = os.environ.get(ENV_VAR, "") if self.spec.env else ""
        extra = [("environment", item) for item in env.split(os.pathsep) if item.strip()]
        extra += [("file", p) for p in self.spec.paths] + [("module", m) for m in self.spec.modules]
        for source, item in extra:
            item = item.strip()
            if item.endswith(".py") or os.sep in item:
                kind = source if source != "module" else "file"
                found.append((Path(item).stem, kind, item, _file_loader(item), None))
            else:
                found.append((item.rsplit(".", 1)[-1], source, item, _module_loader(item), None))
        return found

    def _load(self) -> None:
        for name, source, origin, load, dist_version in self._sources():
            if name in self.spec.disabled:
                continue
            first = next((p for p in self.plugins if p.name == name), None)
            if first is not None:
                if first.origin != origin:  # the same plugin named twice is harmless
                    self._duplicate(name, source, origin, first)
                continue
            info = PluginInfo(name, "unknown", source, origin)
            self.plugins.append(info)
            try:
                module = load()
                info.version = dist_version or _version_of(module)
            except Exception as e:  # a broken plugin must not stop the run
                self._fail(info, "to import", e)
                continue
            try:
                if self.pm.is_registered(module):
                    raise ValueError(
                        f"module {module.__name__} is already loaded as plugin {self.pm.get_name(module)}"
                    )
                self.pm.register(module, name=name)
            except pluggy.PluginValidationError as e:  # a hook with arguments its spec lacks
                self._fail(info, "validation", e)
                continue
            except Exception as e:
                self._fail(info, "to register", e)
                continue
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as e:
                self.pm.unregister(name=name)
                self._fail(info, "validation", e)
        self._call_register("geoforge_register_constructions", self._register_construction)
        self._call_register("geoforge_register_perturbations", self._register_perturbation)

    def _duplicate(self, name: str, source: str, origin: str, first: PluginInfo) -> None:
        """Report a second plugin called ``name`` (skipped: names must be unique)."""
        message = (
            f"plugin {name} ({source} {origin}) skipped: a plugin called {name} is already loaded from "
            f"{first.origin} ({first.source}); rename one of them"
        )
        self.failures[f"{name}: duplicate name"] += 1
        if message not in self.messages:
            self.messages.append(message)

    def _call_register(self, hook: str, register: Callable[[PluginInfo, Any], Any]) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            info = next(p for p in self.plugins if p.name == impl.plugin_name)
            try:
                impl.function(register=lambda *a, _info=info, **k: register(_info, *a, **k))
            except Exception as e:
                self._fail(info, f"in {hook}", e)

    def _register_construction(self, info: PluginInfo, *args: Any, **kwargs: Any) -> None:
        from geoforge.constructions import REGISTRY, register_construction

        kwargs.setdefault("source", info.name)
        # The construction table is process-wide: a plugin loaded again by another host (a
        # worker, a test) re-registers its own constructions; anything else is a duplicate.
        signature = args[0] if args else kwargs.get("signature", "")
        name = signature.split()[0] if isinstance(signature, str) and signature.split() else ""
        mine = name in REGISTRY and REGISTRY[name].source == kwargs["source"]
        if name in info.registers.get("constructions", []):
            raise ValueError(f"construction `{name}` is registered twice by plugin {info.name}")
        previous = REGISTRY.pop(name) if mine else None
        try:
            c = register_construction(*args, **kwargs)
        except Exception:
            if previous is not None:
                REGISTRY[name] = previous
            raise
        info.registers.setdefault("constructions", []).append(c.name)

    def _register_perturbation(self, info: PluginInfo, perturbation: Any) -> None:
        name = getattr(perturbation, "name", None)
        kind = getattr(perturbation, "kind", None)
        if (
            not isinstance(name, str)
            or kind not in ("image", "caption")
            or not callable(getattr(perturbation, "propose", None))
        ):
            raise TypeError(
                f"register() needs an object with a str `name`, `kind` 'image' or 'caption' and "
                f"`propose(positive, rng)`; got {perturbation!r}"
            )
        if name in self.perturbations:
            raise ValueError(f"perturbation `{name}` is already registered by plugin {self.owner[name]}")
        if name in self.spec.disabled:
            return
        self.perturbations[name] = perturbation
        self.owner[name] = info.name
        info.registers.setdefault("perturbations", []).append(name)

    # --- calling ---------------------------------------------------------------------------

    def ordered(self, kind: str, order: Iterable[str] = ()) -> list[Perturbation]:
        """Perturbations of ``kind``: those named in ``order`` first, in that order, then the
        rest by name. The pipeline's configuration, not the plugins, decides the order."""
        names = [n for n in order if n in self.perturbations]
        names += sorted(n for n in self.perturbations if n not in names)
        return [self.perturbations[n] for n in names if self.perturbations[n].kind == kind]

    def propose(
        self, perturbation: Perturbation, positive: Positive, rng: np.random.Generator
    ) -> list[Candidate]:
        """Run ``perturbation.propose``; on an exception, count and report it once and return
        what was produced before it. Items that are not candidates of the right kind are
        dropped and counted as ``garbage``."""
        out: list[Candidate] = []
        owner = self.owner.get(perturbation.name, perturbation.name)
        info = next((p for p in self.plugins if p.name == owner), PluginInfo(owner, "?", "?", "?"))
        try:
            for item in perturbation.propose(positive, rng):
                problem = _candidate_problem(item, perturbation.kind)
                if problem is None:
                    out.append(item)
                    continue
                self.failures[f"{owner}: garbage"] += 1
                message = (
                    f"plugin {owner} ({info.origin}) proposed garbage from {perturbation.name}: {problem}"
                )
                if message not in self.messages:
                    self.messages.append(message)
        except Exception as e:
            self._fail(info, "in propose", e)
        return out


def _candidate_problem(item: object, kind: str) -> str | None:
    """Why ``item`` is not a well-formed candidate of ``kind``, or ``None``."""
    from geoforge.program import Program
    from geoforge.verify import claim_problem

    want = ImageCandidate if kind == "image" else CaptionCandidate
    if not isinstance(item, want):
        return f"expected {want.__name__}, got {type(item).__name__}"
    if isinstance(item, ImageCandidate) and not isinstance(item.program, Program):
        return f"ImageCandidate.program is {type(item.program).__name__}, not a Program"
    fields = [("breaks", item.breaks)]
    if isinstance(item, CaptionCandidate):
        fields.insert(0, ("claims", item.claims))
        if item.text is not None and not isinstance(item.text, str):
            return f"CaptionCandidate.text is {type(item.text).__name__}, not a str"
    for label, claims in fields:
        if not isinstance(claims, tuple | list):
            return f"{type(item).__name__}.{label} is {type(claims).__name__}, not a tuple of Claims"
        for claim in claims:
            if (problem := claim_problem(claim)) is not None:
                return f"{type(item).__name__}.{label}: {problem}"
    return None


def _file_loader(path: str) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no such plugin file: {path}")
        name = f"geoforge_plugin_{file.stem}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]  # no half-initialised module for the next loader to find
            raise
        return module

    return load


def _module_loader(name: str) -> Callable[[], ModuleType]:
    return lambda: importlib.import_module(name)


def _version_of(module: ModuleType) -> str:
    from importlib.metadata import PackageNotFoundError, version

    v = getattr(module, "__version__", None)
    if isinstance(v, str):
        return v
    top = module.__name__.split(".")[0]
    try:
        return version(top)
    except PackageNotFoundError:
        return "unknown"
