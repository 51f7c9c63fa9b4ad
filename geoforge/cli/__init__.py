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

from typer.exceptions import Abort, TyperException

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
        status = app(args=args, prog_name="geoforge", standalone_mode=False)
    except TyperException as e:  # Typer's (vendored) Click errors: a bad command line
        if type(e).__name__ == "NoArgsIsHelpError":
            sys.exit(2)  # Typer printed the help when it raised this, as it does itself
        _traceback()
        sys.stderr.write(f"error: {usage_error(e)}\n")
        sys.exit(e.exit_code)
    except Abort:
        sys.stderr.write("aborted\n")
        sys.exit(1)
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
    sys.exit(status or 0)  # typer.Exit(n) in a command comes back as n outside standalone mode


def usage_error(e: TyperException) -> str:
    """Click's message for a bad command line (a bad option value, a missing argument, an
    unknown command) as one line that names the command and where its help is, e.g.
    ``geoforge generate: Invalid value for '--n': ... (see geoforge generate --help)``; Click and
    Typer print it as a usage line, a hint and a boxed message."""
    message = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    if ctx is None:
        return message
    return f"{ctx.command_path}: {message} (see {ctx.command_path} --help)"


def _traceback() -> None:
    """With ``--debug``, print the traceback of the error being handled to stderr; the exit
    status stays the one the error has without it (2 for bad usage, 1 for a failed run)."""
    if _state["debug"]:
        import traceback

        traceback.print_exc()
