"""geoforge's plugin hooks (pluggy, project name ``geoforge``).

Hooks hand the plugin a ``register`` callback, in the style of simonw/llm's
``register_models(register)``: a plugin calls ``register(thing)`` once per thing it adds, and
the registry rejects duplicate names with a clear message. A plugin module implements the
hooks it needs with ``@geoforge.hookimpl``::

    import geoforge

    @geoforge.hookimpl
    def geoforge_register_perturbations(register):
        register(MyPerturbation())

Plugins are found through the entry point group ``geoforge``, ``--plugin PATH.py|module`` and
the ``GEOFORGE_PLUGINS`` environment variable (see :mod:`geoforge.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("geoforge")
hookimpl = pluggy.HookimplMarker("geoforge")


@hookspec
def geoforge_register_perturbations(register: Callable[[Any], None]) -> None:
    """Register perturbations: call ``register(p)`` for each object ``p`` with a unique
    ``name``, a ``kind`` (``"image"`` or ``"caption"``) and ``propose(positive, rng)``
    (see :class:`geoforge.perturb.Perturbation`). Called once when plugins are loaded."""


@hookspec
def geoforge_register_constructions(register: Callable[..., Any]) -> None:
    """Register constructions: call ``register(signature, outputs, pre=..., facts=...,
    sketch=..., literals=..., doc=..., draws=...)`` with the arguments of
    :func:`geoforge.constructions.register_construction`. Called once when plugins are
    loaded, before any program is parsed."""
