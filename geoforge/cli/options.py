"""Options shared by several commands: plugins (``--plugin``, ``--no-plugin``,
``--strict-plugins``), the program dialect (``--dialect``), the trainers' checkpoint
retention (``--save-total-limit``) and ``--overwrite`` of an output file, with the one place
that loads plugins for a command and the one that checks an output file can be written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from geoforge.plugins import PluginHost, PluginSpec

PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Plugin file (PATH.py) or module to load; repeatable."),
]
NoPluginOption = Annotated[
    list[str] | None,
    typer.Option("--no-plugin", help="Plugin or perturbation name to skip, built-ins included; repeatable."),
]
StrictPluginsOption = Annotated[
    bool,
    typer.Option("--strict-plugins", help="Fail (exit 1) if any plugin fails, instead of skipping it."),
]
DialectOption = Annotated[
    str,
    typer.Option("--dialect", help="Program text dialect: alphageometry (default) or newclid."),
]

SaveTotalLimitOption = typer.Option(
    "--save-total-limit",
    min=1,
    help="Keep only the newest N checkpoints, deleting older ones (transformers' save_total_limit); "
    "default: all.",
)


def plugin_spec(plugin: list[str] | None, no_plugin: list[str] | None) -> PluginSpec:
    """The :class:`geoforge.plugins.PluginSpec` of ``--plugin`` and ``--no-plugin``."""
    from geoforge.plugins import PluginSpec

    return PluginSpec.from_cli(plugin or [], no_plugin or [])


def load_plugins(plugin: list[str] | None, no_plugin: list[str] | None, strict: bool = False) -> PluginHost:
    """Load the plugins a command asked for (entry points, ``GEOFORGE_PLUGINS``, ``--plugin``),
    so that constructions they register are known to the command. Each plugin failure is one
    ``warning:`` line on stderr; with ``strict`` the first makes the command fail (exit 1).
    Raises UsageError for a ``--no-plugin`` name that matches no plugin."""
    from geoforge.negatives import host_for

    host = host_for(plugin_spec(plugin, no_plugin))
    check_plugins(host, strict)
    return host


def check_plugins(host: PluginHost, strict: bool) -> None:
    """Report ``host``'s plugin failures on stderr, or with ``strict`` raise PluginFailure for
    them (exit 1); raise UsageError for a ``--no-plugin`` name that matches nothing."""
    from geoforge.plugins import PluginFailure

    host.check_disabled()
    if strict and host.messages:
        raise PluginFailure("plugin failure with --strict-plugins: " + "; ".join(host.messages))
    for message in host.messages:
        sys.stderr.write(f"warning: {message}\n")


#: The option that lets a command replace a file it would write.
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace the output file if it exists.")]


def writable(path: Path, overwrite: bool = False, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` if its directory exists and it is not a file already there (unless
    ``overwrite``; a device such as ``/dev/null`` is not replaced, so it is always fine); raises
    UsageError naming it otherwise, before any work is done: nothing on disk is replaced without
    ``--overwrite``. ``suffixes``: the file types the command writes (``.png``); a name with
    another suffix is refused (a name without one is taken as the first)."""
    from geoforge.errors import UsageError

    if suffixes and path.suffix.lower() not in (*suffixes, ""):
        raise UsageError(f"-o {path}: expected a file name ending in {' or '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    if path.is_file() and not overwrite:
        raise UsageError(f"{path} exists: pass --overwrite to replace it")
    return path
