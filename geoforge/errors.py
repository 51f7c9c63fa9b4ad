"""Errors raised by geoforge, each one line that names where it happened and what was expected."""

from __future__ import annotations


class GeoforgeError(Exception):
    """Base class of every error geoforge raises on bad input or an impossible request.

    The CLI turns these into a one-line message and exit status 1 (failed run) or 2 (bad usage)
    without a traceback, unless ``--debug`` is given.
    """

    exit_code = 1


class UsageError(GeoforgeError):
    """A request that cannot be carried out as given (conflicting options, an output that
    exists); the CLI exits with status 2."""

    exit_code = 2


class ProgramError(GeoforgeError):
    """A diagram program is malformed: a syntax error, an unknown construction, a wrong arity,
    an undefined or duplicate point.

    ``clause`` is the 1-based clause index, or ``"goal"``, or ``None`` for the whole text;
    ``text`` is that clause's source text and ``source`` the ``file:line`` the program came
    from, if any.
    """

    exit_code = 2

    def __init__(
        self, message: str, *, clause: int | str | None = None, text: str = "", source: str = ""
    ) -> None:
        self.message = message
        self.clause = clause
        self.text = text
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.clause is not None:
            where.append(
                f"clause {self.clause} `{self.text}`"
                if isinstance(self.clause, int)
                else f"{self.clause} `{self.text}`"
            )
        elif self.text:
            where.append(f"`{self.text}`")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def located(self, source: str) -> ProgramError:
        """Return a copy of this error that also names ``source`` (e.g. ``problems.txt:12``)."""
        return ProgramError(self.message, clause=self.clause, text=self.text, source=source)


class RealiseError(GeoforgeError):
    """A well-formed program could not be realised numerically.

    ``clause`` is the 1-based index of the clause that failed most often, ``text`` its source,
    ``tries`` the number of attempts made and ``reason`` the last failed check (for example
    ``near-parallel lines (angle 0.000°)``). The message reads
    ``cannot realise clause 3 `x = ...` after 200 tries: reason``.
    """

    def __init__(self, *, clause: int, text: str, tries: int, reason: str, source: str = ""):
        self.clause = clause
        self.text = text
        self.tries = tries
        self.reason = reason
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(f"{head}cannot realise clause {clause} `{text}` after {tries} tries: {reason}")


class DegenerateError(Exception):
    """Internal signal that one attempt at a clause hit a degenerate configuration.

    Caught by the realiser, which retries and finally raises :class:`RealiseError` with the
    last ``reason``. Never escapes :func:`geoforge.realise.realise`.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
