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
    from, if any. ``column`` is the 1-based column in the program text where the mistake is
    (set by :func:`geoforge.program.parse_program`), ``token`` the word that is wrong (used to
    find the column) and ``hint`` what is known to fix it.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        clause: int | str | None = None,
        text: str = "",
        source: str = "",
        column: int | None = None,
        token: str = "",
        hint: str = "",
    ) -> None:
        self.message = message
        self.clause = clause
        self.text = text
        self.source = source
        self.column = column
        self.token = token
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(self.source if self.column is None else f"{self.source}:{self.column}")
        elif self.column is not None:
            where.append(f"column {self.column}")
        if self.clause is not None:
            quoted = f" `{self.text}`" if self.text else ""
            where.append(
                f"clause {self.clause}{quoted}" if isinstance(self.clause, int) else f"{self.clause}{quoted}"
            )
        elif self.text:
            where.append(f"`{self.text}`")
        prefix = ": ".join(where)
        message = f"{self.message}; hint: {self.hint}" if self.hint else self.message
        return f"{prefix}: {message}" if prefix else message

    def located(self, source: str = "", **changes: object) -> ProgramError:
        """A copy of this error that also names ``source`` (e.g. ``problems.txt:12``), with
        other fields (``clause``, ``text``, ``column``) replaced by ``changes``."""
        fields: dict[str, object] = {
            "clause": self.clause,
            "text": self.text,
            "source": source or self.source,
            "column": self.column,
            "token": self.token,
            "hint": self.hint,
        }
        fields.update(changes)
        return ProgramError(self.message, **fields)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        """JSON-ready fields: message, clause, text, column and hint."""
        return {
            "message": self.message,
            "clause": self.clause,
            "text": self.text,
            "column": self.column,
            "hint": self.hint,
        }


class ProgramErrors(ProgramError):
    """Several mistakes in one program, found in one pass: ``errors`` holds one
    :class:`ProgramError` each, in the order of the text; the message has one line each."""

    def __init__(self, errors: list[ProgramError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(
            first.message, clause=first.clause, text=first.text, source=first.source, column=first.column
        )
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def raise_all(errors: list[ProgramError]) -> None:
    """Raise nothing for no errors, the error itself for one, :class:`ProgramErrors` for more."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ProgramErrors(errors)


def undefined_point(name: str, defined: set[str] | frozenset[str], **where: object) -> ProgramError:
    """The error for an undefined point ``name``, with a hint when a point that differs only in
    case is defined (point names are case-sensitive). ``where`` are ProgramError fields."""
    same = sorted(p for p in defined if p.lower() == name.lower())
    hint = f"`{same[0]}` is defined: point names are case-sensitive" if same else ""
    return ProgramError(f"undefined point `{name}`", token=name, hint=hint, **where)  # type: ignore[arg-type]


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
