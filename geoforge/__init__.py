"""geoforge: fine-grained geometry diagrams, verified hard negatives and an MMCLIP trainer.

The core (this package) has no torch dependency: diagram programs (:mod:`geoforge.program`),
constructions (:mod:`geoforge.constructions`), realisation (:mod:`geoforge.realise`), facts
(:mod:`geoforge.facts`), rendering (:mod:`geoforge.render`), captions
(:mod:`geoforge.caption`), the sampler (:mod:`geoforge.sampler`) and corpus I/O
(:mod:`geoforge.corpus`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from geoforge.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]

try:
    __version__ = version("geoforge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
