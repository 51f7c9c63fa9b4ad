"""The Typer app, its root options and the shared consoles and state of every command."""

from __future__ import annotations

import os
import signal
from types import FrameType
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main process as Ctrl-C's KeyboardInterrupt is, so that a run
    stops the same way (its worker pool shut down, its output's lock released, what it kept
    said); the exit status is 143 (128 + SIGTERM) instead of 130."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in this process. A forked pool worker inherits the
    handler and ends as SIGTERM's default action does (no Python exception in a worker)."""
    main = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


def stopped(e: KeyboardInterrupt, kept: str = "") -> int:
    """Say on stderr that the run was stopped by ``e`` (``terminated`` for SIGTERM,
    ``interrupted`` for Ctrl-C) and, after a colon, ``kept``: what it keeps and how to go on.
    Returns the exit status: 143 for SIGTERM, 130 for Ctrl-C."""
    import sys

    word, status = ("terminated", 143) if isinstance(e, Terminated) else ("interrupted", 130)
    sys.stderr.write(f"{word}: {kept}\n" if kept else f"{word}\n")
    return status


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (``1 shard``, ``3 shards``)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
