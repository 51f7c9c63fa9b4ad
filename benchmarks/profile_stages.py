"""Where the time goes: a cProfile run summed into named stages, by function and caller.

A stage is ``(label, depth, callee, callers)``: the cumulative time of the function ``callee``
(``"path/suffix.py:name"``, or several such joined by ``|``), counted only for calls from one
of ``callers`` (the same form; an empty tuple counts every call). Caller edges come from
:mod:`pstats`, which records the cumulative time of each (caller, callee) pair, so ``realise``
called by the verifier and ``realise`` called for a positive are told apart. A stage whose
function a tree lacks reads ``None``. Profiling slows Python code more than C code, so shares,
not absolute times, are what to compare.

Used by ``negatives_speed.py`` and ``generate_speed.py``.
"""

from __future__ import annotations

import pstats
from typing import Any

Stage = tuple[str, int, str, tuple[str, ...]]


def _matches(func: tuple[str, int, str], key: str) -> bool:
    """Does ``func`` (a pstats key) match ``key`` (``path/suffix.py:name``, alternatives joined
    by ``|``, for trees that moved a function)?"""
    path, _, name = func
    path = path.replace("\\", "/")
    for alternative in key.split("|"):
        suffix, _, want = alternative.rpartition(":")
        if name == want and path.endswith(suffix):
            return True
    return False


def stage_seconds(stats: pstats.Stats, stages: list[Stage]) -> dict[str, float | None]:
    """Seconds spent in each stage (label → seconds, ``None`` if no function matched)."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out: dict[str, float | None] = {}
    for label, _, callee, callers in stages:
        total, seen = 0.0, False
        for func, (_, _, _, ct, edges) in table.items():
            if not _matches(func, callee):
                continue
            seen = True
            if not callers:
                total += ct
                continue
            total += sum(e[3] for caller, e in edges.items() if any(_matches(caller, c) for c in callers))
        out[label] = total if seen else None
    return out


def show(stages: list[Stage], columns: dict[str, dict[str, float | None]], per: dict[str, int]) -> None:
    """Print ms per sample of each stage, one column per tree (``per``: samples per column)."""
    names = list(columns)
    print(f"{'stage (profiled ms/sample)':<44}" + "".join(f"{n:>12}" for n in names))
    for label, depth, _, _ in stages:
        cells = []
        for n in names:
            v = columns[n].get(label)
            cells.append(f"{'—':>12}" if v is None else f"{1000 * v / per[n]:>12.2f}")
        print(f"{'  ' * depth + label:<44}" + "".join(cells))
