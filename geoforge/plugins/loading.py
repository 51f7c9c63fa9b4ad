"""Finding and importing plugin modules (files, modules, installed distributions), and the
wording of what went wrong while loading one."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pluggy

from geoforge import hookspecs


def file_loader(path: str) -> Callable[[], ModuleType]:
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


def module_loader(name: str) -> Callable[[], ModuleType]:
    return lambda: importlib.import_module(name)


def distribution_of(module: str) -> tuple[str, str] | None:
    """The installed distribution that provides the top-level package of ``module``, and its
    version, found without importing it; None if none does."""
    from importlib.metadata import packages_distributions, version

    names = packages_distributions().get(module.split(".")[0], [])
    return (names[0], version(names[0])) if names else None


def same_origin(a: str, b: str) -> bool:
    """True if two plugin origins name the same plugin: the same module, or the same file
    however it is spelt (``p.py`` in ``GEOFORGE_PLUGINS``, ``./p.py`` on the command line)."""
    if a == b:
        return True
    files = [x.endswith(".py") or os.sep in x for x in (a, b)]
    return all(files) and Path(a).resolve() == Path(b).resolve()


def source_digest(module: ModuleType) -> str:
    """The SHA-256 of ``module``'s source file (hex), ``""`` where it has none."""
    import hashlib

    file = getattr(module, "__file__", None)
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else ""
    except OSError:
        return ""


def version_of(module: ModuleType) -> str:
    from importlib.metadata import PackageNotFoundError, version

    v = getattr(module, "__version__", None)
    if isinstance(v, str):
        return v
    top = module.__name__.split(".")[0]
    try:
        return version(top)
    except PackageNotFoundError:
        return "unknown"


def hook_hint(module: ModuleType) -> str:
    """``" (did you mean `HOOK`?)"`` for each function of ``module`` marked as a geoforge hook
    implementation whose name is close to a hook geoforge defines (:mod:`geoforge.hookspecs`)
    but not one of them; ``""`` when none is."""
    import difflib

    specs = [n for n in dir(hookspecs) if n.startswith("geoforge_")]
    marker = "geoforge_impl"  # the attribute pluggy.HookimplMarker("geoforge") sets
    hints = []
    for name in sorted(vars(module)):
        if name not in specs and hasattr(getattr(module, name), marker):
            close = difflib.get_close_matches(name, specs, n=1)
            if close:
                hints.append((name, close[0]))
    if len(hints) == 1:  # pluggy's message names the one unknown hook already
        return f" (did you mean `{hints[0][1]}`?)"
    return f" ({'; '.join(f'`{n}`: did you mean `{c}`?' for n, c in hints)})" if hints else ""


def validation_message(e: pluggy.PluginValidationError) -> str:
    """pluggy's validation message on one line (its lines joined by ``"; "``) and without the
    module's repr, which names the plugin geoforge already names, in a longer form (``in plugin
    <module 'geoforge_plugin_x' from '/x.py'>``); for a hook implementation whose arguments
    the hook does not have, what the hook takes."""
    import inspect
    import re

    text = re.sub(r" (in|of) plugin <module [^>]*>", "", str(e)).replace("'", "`")
    message = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    hook = re.search(r"for hook `(geoforge_\w+)`", message)
    if hook and "can not be found in the hookspec" in message and hasattr(hookspecs, hook[1]):
        takes = ", ".join(inspect.signature(getattr(hookspecs, hook[1])).parameters)
        message += f" ({hook[1]} takes ({takes}))"
    return message
