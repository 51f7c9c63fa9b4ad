"""The ``geoforge`` command line (Typer + rich).

Quiet success, loud failure: a command prints what the user needs (a progress bar while it
works, one summary table at the end), ``--json`` prints machine-readable output and nothing
else on stdout, and an error is one line on stderr. Exit status: 0 success, 1 failed run,
2 bad usage or bad input. ``--debug`` shows tracebacks. Heavy imports (numpy, matplotlib)
happen inside the commands so ``--help`` is fast.

One module per command group: :mod:`~geoforge.cli.engine` (programs),
:mod:`~geoforge.cli.caption` (captions for any program), :mod:`~geoforge.cli.corpus` (corpora
and plugins), :mod:`~geoforge.cli.corpus_tools` (``corpus verify``), :mod:`~geoforge.cli.train`
(training and evaluation), :mod:`~geoforge.cli.export` (trained models for open_clip and Hugging
Face), all on the app of :mod:`~geoforge.cli.app`.
"""

from __future__ import annotations

import sys

from geoforge.cli import (  # noqa: F401  (they register their commands)
    caption,
    corpus,
    corpus_tools,
    engine,
    export,
    mmgeolm,
    train,
)
from geoforge.cli.app import _state, app, stop_on_sigterm, stopped

__all__ = ["app", "main"]


#: Errors of the operating system that mean bad input (a path that cannot be used), exit 2.
_BAD_PATH = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def main() -> None:
    """Entry point: run the app, turning geoforge errors into one-line messages (one line per
    mistake when a program has several). ``--debug`` may come before or after the command."""
    from geoforge.errors import GeoforgeError

    args = sys.argv[1:]
    head = args[: args.index("--")] if "--" in args else args
    if "--debug" in head:
        _state["debug"] = True
        args = [a for a in head if a != "--debug"] + args[len(head) :]
    stop_on_sigterm()
    try:
        app(args=args)
    except GeoforgeError as e:
        _traceback()
        for line in str(e).splitlines() or [type(e).__name__]:
            sys.stderr.write(f"error: {line}\n")
        sys.exit(e.exit_code)
    except _BAD_PATH as e:
        _traceback()
        sys.stderr.write(f"error: {e.strerror or e}: {e.filename}\n")
        sys.exit(2)
    except KeyboardInterrupt as e:
        sys.exit(stopped(e))
    except Exception as e:
        _traceback()
        hint = "" if _state["debug"] else " (run with --debug for the traceback)"
        sys.stderr.write(f"internal error: {type(e).__name__}: {e}{hint}\n")
        sys.exit(1)


def _traceback() -> None:
    """With ``--debug``, print the traceback of the error being handled to stderr; the exit
    status stays the one the error has without it (2 for bad usage, 1 for a failed run)."""
    if _state["debug"]:
        import traceback

        traceback.print_exc()
