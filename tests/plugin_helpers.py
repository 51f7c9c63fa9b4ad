"""Helpers shared by the plugin and verifier tests (tests/test_plugins.py, tests/test_verify.py)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from geoforge.caption import Claim
from geoforge.perturb import Positive
from geoforge.plugins import ENV_VAR, PluginHost, PluginSpec
from geoforge.program import parse_program
from geoforge.scene import Scene

if TYPE_CHECKING:
    from geoforge.testing import Report

BUILT_INS = {"alter_relation", "caption_rules", "delete_point", "move_vertex", "retrieval"}
IMAGE_BUILT_INS = ("alter_relation", "delete_point", "move_vertex")
GEOFORGE = Path(sys.executable).with_name("geoforge")

#: A right triangle with an altitude whose right angles are marked (squares on the figure).
MARKED = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "draw polygon A B C; draw segment A D; mark right B A C; mark right A D B"
)


@pytest.fixture(autouse=True)
def _no_env_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the plugins they ask for, whatever the caller's environment holds."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def make_positive(program: str, claims: list[str], seed: int = 0) -> Positive:
    """:func:`geoforge.testing.make_positive`."""
    from geoforge.testing import make_positive

    return make_positive(program, claims, seed=seed)


def run_perturbation(perturbation: object, positive: Positive) -> Report:
    """:func:`geoforge.testing.run_perturbation`."""
    from geoforge.testing import run_perturbation

    return run_perturbation(perturbation, positive)  # type: ignore[arg-type]


def write_plugin(directory: Path, name: str, body: str) -> Path:
    """A one-file plugin ``directory/name.py`` with ``body`` after ``import geoforge``."""
    path = directory / f"{name}.py"
    path.write_text("import geoforge\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def host_with(*paths: Path, **spec: object) -> PluginHost:
    """A host with the installed entry points plus the given plugin files."""
    return PluginHost(PluginSpec(paths=tuple(str(p) for p in paths), **spec))  # type: ignore[arg-type]


def png_of(positive: Positive) -> bytes:
    from geoforge.render import render

    return render(positive.scene)


def scene_with(points: dict[str, tuple[float, float]]) -> Scene:
    """A Scene with free points at exactly ``points`` (no realisation)."""
    program = parse_program("; ".join(f"{n} = free {n}" for n in points))
    return Scene(program, {n: np.array(xy, dtype=np.float64) for n, xy in points.items()}, seed=0)


def claim(text: str) -> Claim:
    kind, *args = text.split()
    return Claim(kind, tuple(args))


#: A file plugin's body (after ``import geoforge``) registering one caption perturbation, `noop`,
#: that proposes nothing.
NOOP = """
class Noop:
    name = "noop"
    kind = "caption"

    def propose(self, positive, rng):
        return iter(())

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Noop())
"""
