"""The construction table: named steps that place points, as data.

Each :class:`Construction` mirrors one block of AlphaGeometry's ``defs.txt``
(``google-deepmind/alphageometry``): its parameters, which of them are new points, its
preconditions (non-degeneracy) and the facts it guarantees, and a numeric *sketch*: one or more
calls to the functions of :mod:`geoforge.constructions.sketches`, each returning a locus (a line,
ray or circle the new point lies on) or the new points themselves. Our table is written from
that specification; the reference files are used only as test oracles.

Plugins may add constructions with :func:`register_construction`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property, lru_cache

from geoforge.errors import ProgramError, undefined_point
from geoforge.facts import Fact, check_fact_shape


@dataclass(frozen=True)
class SketchCall:
    """One call of a sketch function: ``name`` in :data:`sketches.SKETCHES` with parameter names."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Construction:
    """A construction: ``name`` with ordered ``params``; ``outputs`` are the new points,
    ``literals`` the numeric parameters; ``preconditions`` and ``facts`` are Facts over the
    parameter names; ``sketch`` places the outputs; ``source`` is where the definition comes
    from (``alphageometry``, ``newclid`` or ``geoforge``); ``draws`` are the circles a figure
    shows, ``("circle", (centre, through))`` or ``("circumcircle", (a, b, c))``."""

    name: str
    params: tuple[str, ...]
    outputs: tuple[str, ...]
    literals: tuple[str, ...]
    preconditions: tuple[Fact, ...]
    facts: tuple[Fact, ...]
    sketch: tuple[SketchCall, ...]
    source: str
    doc: str
    draws: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Parameters that must name existing points (computed once per construction)."""
        return tuple(p for p in self.params if p not in self.outputs and p not in self.literals)

    @property
    def signature(self) -> str:
        """The full form, e.g. ``x = foot x a b c``."""
        return f"{' '.join(self.outputs)} = {self.name} {' '.join(self.params)}"


REGISTRY: dict[str, Construction] = {}


def _facts(text: str) -> tuple[Fact, ...]:
    return tuple(Fact(t.split()[0], tuple(t.split()[1:])) for t in text.split(",") if t.strip())


def register_construction(
    signature: str,
    outputs: str,
    *,
    pre: str = "",
    facts: str = "",
    sketch: str,
    literals: str = "",
    source: str = "geoforge",
    doc: str = "",
    draws: str = "",
) -> Construction:
    """Add a construction to :data:`REGISTRY` and return it.

    ``signature`` is ``"name p1 p2 ..."``; ``outputs`` and ``literals`` name parameters;
    ``pre`` and ``facts`` are comma-separated facts over parameters; ``sketch`` is a
    comma-separated list of sketch calls; ``draws`` a comma-separated list of ``circle o a``
    or ``circumcircle a b c`` over parameters. Raises ValueError on a duplicate name, an
    unknown sketch function, a bad ``draws`` entry or a fact with a wrong shape.
    """
    from geoforge.constructions.sketches import SKETCHES

    name, *params = signature.split()
    if name in REGISTRY:
        raise ValueError(f"construction `{name}` is already registered (by {REGISTRY[name].source})")
    calls = tuple(SketchCall(t.split()[0], tuple(t.split()[1:])) for t in sketch.split(","))
    for call in calls:
        if call.name not in SKETCHES:
            raise ValueError(f"construction `{name}`: unknown sketch `{call.name}`")
    drawn = tuple((t.split()[0], tuple(t.split()[1:])) for t in draws.split(",") if t.strip())
    for kind, args in drawn:
        want = {"circle": 2, "circumcircle": 3}.get(kind)
        if want != len(args) or not set(args) <= set(params):
            raise ValueError(f"construction `{name}`: bad draws entry `{kind} {' '.join(args)}`")
    c = Construction(
        name=name,
        params=tuple(params),
        outputs=tuple(outputs.split()),
        literals=tuple(literals.split()),
        preconditions=_facts(pre),
        facts=_facts(facts),
        sketch=calls,
        source=source,
        doc=doc,
        draws=drawn,
    )
    for f in (*c.preconditions, *c.facts):
        probe = Fact(f.name, tuple("1" if a in c.literals else a for a in f.args))
        check_fact_shape(probe, set(c.params))
    REGISTRY[name] = c
    return c


def get(name: str) -> Construction:
    """The construction called ``name``. Raises KeyError if there is none."""
    return REGISTRY[name]


@lru_cache(maxsize=16384)
def _full_form(call) -> tuple[tuple[str, ...], tuple[str, ...]] | None:  # type: ignore[no-untyped-def]
    """``(outputs, inputs)`` of a :class:`geoforge.program.Call` that names a known construction
    with every argument written out and literals that parse, or ``None`` (unknown, short form
    or bad literal). Cached per call: a program re-validated after an edit checks each
    unchanged call with two set lookups."""
    from geoforge.exact import parse_value

    c = REGISTRY.get(call.name)
    if c is None or len(call.args) != len(c.params):
        return None
    binding = dict(zip(c.params, call.args))
    try:
        for p in c.literals:
            parse_value(binding[p])
    except ProgramError:
        return None
    return tuple(binding[p] for p in c.outputs), tuple(binding[p] for p in c.inputs)


def resolve_call(call, clause, defined, *, index: int, source: str):  # type: ignore[no-untyped-def]
    """Check one construction call of a clause and return it with omitted outputs filled in.

    ``call`` is a :class:`geoforge.program.Call` of ``clause`` (a
    :class:`geoforge.program.Clause`, the ``index``-th of the program read from ``source``);
    ``defined`` the points defined by earlier clauses. Accepts the full form and the short
    form without output names (``h = on_tline b a c``), which AlphaGeometry allows. A call
    already in full form and right here is returned as is, after two set lookups (no error
    text is built unless one is raised). Raises ProgramError (unknown construction with a
    suggestion, wrong arity, bad literal, undefined point, outputs that differ from the
    clause's points).
    """
    clause_points = clause.points
    shape = _full_form(call)
    if shape is not None:
        built, used = shape
        if sorted(built) == sorted(clause_points) and all(p in defined and p not in built for p in used):
            return call
    from geoforge.exact import parse_value
    from geoforge.program import Call

    text = clause.text()

    def fail(message: str, token: str = "", hint: str = "") -> ProgramError:
        return ProgramError(message, clause=index, text=text, source=source, token=token, hint=hint)

    c = REGISTRY.get(call.name)
    if c is None:
        from geoforge.facts import PREDICATES

        near = difflib.get_close_matches(call.name, REGISTRY, n=1, cutoff=0.6)
        suggestion = f" (did you mean `{near[0]}`?)" if near else ""
        hint = f"`{call.name}` is a predicate: use it after `?`" if call.name in PREDICATES else ""
        raise fail(f"unknown construction `{call.name}`{suggestion}", call.name, hint)
    args = list(call.args)
    n_out = len(c.outputs)
    if len(args) != len(c.params):
        short_form = len(args) == len(c.params) - n_out and len(clause_points) == n_out
        if short_form and not set(args) & set(clause_points):
            given = iter(args)
            outs = iter(clause_points)
            args = [next(outs) if p in c.outputs else next(given) for p in c.params]
        else:
            short = " ".join(p for p in c.params if p not in c.outputs)
            raise fail(
                f"`{c.name}` takes {len(c.params)} arguments, got {len(args)}: expected "
                f"`{c.signature}`" + (f" or `{' '.join(c.outputs)} = {c.name} {short}`" if n_out else ""),
                call.name,
            )
    binding = dict(zip(c.params, args))
    for p in c.literals:
        try:
            parse_value(binding[p])
        except ProgramError as e:
            raise fail(e.message, binding[p]) from None
    outs = [binding[p] for p in c.outputs]
    if sorted(outs) != sorted(clause_points):
        raise fail(
            f"`{c.name}` defines {' '.join(outs) or 'no points'} but the clause names "
            f"{' '.join(clause_points)}: expected `{' '.join(outs)} = {call.text()}`",
            call.name,
        )
    for p in c.inputs:
        if binding[p] in outs:
            raise fail(f"point `{binding[p]}` is both built and used by `{c.name}`", binding[p])
        if binding[p] not in defined:
            raise undefined_point(binding[p], defined, clause=index, text=text, source=source)
    return Call(call.name, tuple(args))


from geoforge.constructions import table as _table  # noqa: E402,F401  (fills REGISTRY)
