"""The ``geoforge`` command line (Typer + rich).

Quiet success, loud failure: a command prints what the user needs (a progress bar while it
works, one summary table at the end), ``--json`` prints machine-readable output and nothing
else on stdout, and an error is one line on stderr. Exit status: 0 success, 1 failed run,
2 bad usage or bad input. ``--debug`` shows tracebacks. Heavy imports (numpy, matplotlib)
happen inside the commands so ``--help`` is fast.

One module per command group: :mod:`~geoforge.cli.engine` (programs),
:mod:`~geoforge.cli.corpus` (corpora and plugins), :mod:`~geoforge.cli.train` (training and
evaluation), all on the app of :mod:`~geoforge.cli.app`.
"""

from __future__ import annotations

import sys

from geoforge.cli import corpus, engine, train  # noqa: F401  (they register their commands)
from geoforge.cli.app import _state, app, err

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning geoforge errors into one-line messages."""
    from geoforge.errors import GeoforgeError

    try:
        app()
    except GeoforgeError as e:
        if _state["debug"]:
            raise
        sys.stderr.write(f"error: {e}\n")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if _state["debug"]:
            raise
        sys.stderr.write(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)\n")
        sys.exit(1)

