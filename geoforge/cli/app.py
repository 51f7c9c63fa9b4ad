"""The Typer app, its root options and the shared consoles and state of every command."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="geoforge",
    help="Fine-grained geometry diagrams: realise, render and check diagram programs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",  # `[train]` in a help text is shown, not read as rich markup
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
# Into a file or a pipe, a printed line stays one line (rich would break it at 80 columns):
# captions, summaries and warnings are read back by programs and grep.
for _console in (err, out):
    _console.soft_wrap = not _console.is_terminal
_state = {"debug": bool(os.environ.get("GEOFORGE_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"geoforge {version('geoforge')}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """geoforge: diagram programs → verified figures, captions and hard negatives."""
    _state["debug"] = _state["debug"] or debug


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (``1 shard``, ``3 shards``)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
