"""Helpers the negatives and generation benchmarks share: wall-clock timers put around library
functions, and the K / M / R arguments.

Used by ``generate_speed.py``, ``negatives_speed.py``, ``negatives_timers.py``,
``negatives_instructions.py`` and ``negatives_perf.py``.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

#: One timed function: (module, attribute, label, other modules that imported it by name).
Target = tuple[str, str, str, tuple[str, ...]]


@contextmanager
def wall_timers(
    targets: Iterable[Target],
    seconds: MutableMapping[str, float],
    calls: MutableMapping[str, int] | None = None,
) -> Iterator[None]:
    """Replace each target function, in its module and in the modules that imported it by name,
    by one that adds its wall time (``time.perf_counter``, seconds) to ``seconds[label]`` and
    counts its calls in ``calls[label]``; several targets may share a label. The originals are
    put back on exit. Costs a few microseconds per call. Raises ImportError or AttributeError
    for a target that does not exist."""
    originals: list[tuple[object, str, Callable[..., Any]]] = []

    def wrap(f: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start
                if calls is not None:
                    calls[label] = calls.get(label, 0) + 1

        return timed_call

    try:
        for module_name, name, label, importers in targets:
            f = getattr(importlib.import_module(module_name), name)
            timed_f = wrap(f, label)
            for target in (module_name, *importers):
                module = importlib.import_module(target)
                originals.append((module, name, getattr(module, name)))
                setattr(module, name, timed_f)
        yield
    finally:
        for module, name, f in reversed(originals):
            setattr(module, name, f)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an int ≥ ``low``, else a usage error naming the value."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value

    parse.__name__ = f"int ≥ {low}"  # how argparse names the type in its error
    return parse


def add_negative_counts(parser: argparse.ArgumentParser, n: int) -> None:
    """Add ``-n`` (positives ≥ 1, default ``n``) and ``-k``, ``-m``, ``-r`` (image, caption and
    retrieval negatives per positive, ≥ 0, default 10 each) to ``parser``."""
    parser.add_argument("-n", type=at_least(1), default=n, help=f"positives (default {n})")
    parser.add_argument("-k", type=at_least(0), default=10, help="image negatives per positive")
    parser.add_argument("-m", type=at_least(0), default=10, help="caption negatives per positive")
    parser.add_argument("-r", type=at_least(0), default=10, help="retrieval negatives per positive")


def negatives_workload(
    n: int, k: int, m: int, r: int, recipe_path: str, warmed: Callable[[], None] | None = None
) -> None:
    """The workload the negatives benchmarks measure: three warm-up positives (seed 1) and
    the negatives of the first, then ``warmed()`` (when given), then ``n`` positives of
    ``recipe_path`` (seed 0) with ``k`` image, ``m`` caption and ``r`` retrieval negatives
    each, all built-in plugins loaded."""
    from geoforge.generate import make_sample
    from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
    from geoforge.plugins import PluginSpec
    from geoforge.sampler import load_recipe

    recipe = load_recipe(recipe_path)
    config, spec = NegativeConfig(k, m, r), PluginSpec()
    warm = [make_sample(recipe, 1, i) for i in range(3)]
    add_negatives(warm[0], tuple(pool_entry(s) for s in warm), config, spec, recipe.image_size, 1)
    if warmed is not None:
        warmed()
    samples = [make_sample(recipe, 0, i) for i in range(n)]
    pool = tuple(pool_entry(s) for s in samples)
    for s in samples:
        add_negatives(s, pool, config, spec, recipe.image_size, 0)
