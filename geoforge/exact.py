"""Exact values with sympy: parsing literals and givens, and printing them as a textbook does.

Literals appear in construction calls (``s_angle b a c 60``, ``aconst a b c x 2pi/3``,
``rconst a b c x 1/2``) and in givens (``given length a b 3*sqrt(2)``). Angles written with
``pi`` are radians; plain numbers in angle positions are degrees.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import sympy

from geoforge.errors import ProgramError

_PI_FORM = re.compile(r"^(-?[0-9.]*)pi(?:/([0-9.]+))?$")
_ALLOWED = re.compile(r"^[0-9a-z.+\-*/()√^]+$")
#: An integer, a decimal or a fraction of integers, without leading zeros: what
#: ``sympify(..., rational=True)`` reads as the same Rational that ``sympy.Rational`` makes of it.
_RATIONAL = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+|/[1-9][0-9]*)?$")


@lru_cache(maxsize=4096)
def _parse(token: str) -> sympy.Expr:
    if _RATIONAL.match(token):  # most literals; sympify's parser costs about 1 ms a token
        return sympy.Rational(token)
    m = _PI_FORM.match(token)
    if m:
        k = (
            sympy.Rational(m.group(1))
            if m.group(1) not in ("", "-")
            else sympy.Integer(-1 if m.group(1) == "-" else 1)
        )
        den = sympy.Rational(m.group(2)) if m.group(2) else 1
        return k * sympy.pi / den
    if not _ALLOWED.match(token):
        raise ValueError(token)
    text = re.sub(r"√([0-9]+|\([^)]*\))", r"sqrt(\1)", token).replace("^", "**")
    text = re.sub(r"([0-9)])(sqrt|pi)", r"\1*\2", text)
    expr = sympy.sympify(text, locals={"sqrt": sympy.sqrt, "pi": sympy.pi}, rational=True)
    if not isinstance(expr, sympy.Expr) or expr.free_symbols or not expr.is_real:
        raise ValueError(token)
    return sympy.nsimplify(expr) if expr.is_Float else expr


def parse_value(token: str, where: str = "") -> sympy.Expr:
    """Parse a literal such as ``60``, ``-15``, ``1/2``, ``3*sqrt(2)``, ``3√2`` or ``2pi/3``
    into an exact sympy expression.

    Raises ProgramError naming ``where`` if ``token`` is not a real constant expression.
    """
    try:
        return _parse(token)
    except (ValueError, TypeError, sympy.SympifyError, SyntaxError):
        raise ProgramError(
            f"bad value `{token}`: expected a number or exact expression such as 60, 1/2, 3*sqrt(2) or 2pi/3",
            text=where,
        ) from None


def angle_radians(token: str) -> float:
    """A literal angle in radians: ``2pi/3`` is radians, a plain number (``60``) degrees."""
    value = parse_value(token)
    return float(value) if value.has(sympy.pi) else math.radians(float(value))


def format_value(expr: sympy.Expr, unit: str = "") -> str:
    """Textbook form of an exact value: ``3√2``, ``√3/2``, ``60°`` (``unit="°"``), ``2.5``.

    Square roots use ``√`` and rationals ``a/b``; other irrationals fall back to 3 significant
    decimals.
    """
    return _format(sympy.nsimplify(expr) if expr.has(sympy.Float) else expr, unit)


def format_literal(token: str, unit: str = "") -> str:
    """:func:`format_value` of :func:`parse_value` of ``token``, cached (captions and labels
    format the same few literals many times)."""
    return _format(parse_value(token), unit)


@lru_cache(maxsize=4096)
def _format(expr: sympy.Expr, unit: str) -> str:
    text = sympy.sstr(expr)
    text = re.sub(r"sqrt\(([0-9]+)\)", r"√\1", text).replace("*", "")
    if re.search(r"[a-z(]", text):
        text = f"{float(expr):.3g}"
    return text + unit


def recognise(x: float, rel_tol: float = 1e-10, max_den: int = 12, max_radicand: int = 500):  # type: ignore[no-untyped-def]
    """An exact closed form for a float, or ``None``: ``p/q`` or ``(p/q)·√n`` with ``q ≤
    max_den`` and square-free ``n ≤ max_radicand``, the simplest that matches ``x`` to
    ``rel_tol`` (relative). Used for lengths and ratios derived from exact givens, e.g.
    ``3.4641016151377544 → 2√3``.

    This is recognition, not proof: a float that happens to lie within ``rel_tol`` of such a
    form is reported as that form, so callers use it only where the value is known to be
    algebraic of low degree (givens times ratios of a figure built from them).
    """
    if not math.isfinite(x):
        return None
    if x == 0:
        return sympy.Integer(0)
    roots = _ROOTS[: int(np.searchsorted(_SQUARE_FREE, max_radicand, side="right"))]  # (N,)
    q = np.arange(1.0, max_den + 1)  # (Q,)
    # The same float operations, in the same order, as a loop over n then q: base = x / √n,
    # p = round(base·q) (half to even, as Python's round), match if |p/q·√n − x| ≤ tol·|x|.
    p = np.round((x / roots)[:, None] * q)
    match = (p != 0) & (np.abs(p / q * roots[:, None] - x) <= rel_tol * abs(x))
    if not match.any():
        return None
    i, j = divmod(int(np.argmax(match)), len(q))  # the first in (n, q) order
    return sympy.Rational(int(p[i, j]), j + 1) * sympy.sqrt(int(_SQUARE_FREE[i]))


_SQUARE_FREE = np.array([n for n in range(1, 501) if all(n % (k * k) for k in range(2, 23))])
_ROOTS = np.sqrt(_SQUARE_FREE.astype(np.float64))
