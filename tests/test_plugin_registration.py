"""Registering plugins: what `register()` accepts, hook validation, duplicate names, a plugin
that fails part-way through registering, and plugin constructions."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from plugin_helpers import (  # noqa: F401  (_no_env_plugins is an autouse fixture)
    BUILT_INS,
    NOOP,
    _no_env_plugins,
    host_with,
    write_plugin,
)

from geoforge.constructions import REGISTRY
from geoforge.program import parse_program
from geoforge.realise import realise


def test_misspelt_hook_is_a_validation_failure_reported_with_the_plugin_name(tmp_path):
    path = write_plugin(
        tmp_path,
        "typo",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbation(register):
            raise AssertionError("never called")
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"typo: validation": 1}
    [message] = host.messages
    assert message == (
        f"plugin typo ({path}) failed validation: unknown hook `geoforge_register_perturbation` "
        "(did you mean `geoforge_register_perturbations`?)"
    )  # one line, without pluggy's repr of the module
    assert next(p for p in host.plugins if p.name == "typo").error == message
    assert not host.pm.has_plugin("typo")
    assert set(host.perturbations) >= BUILT_INS


def test_hook_with_an_argument_its_spec_lacks_is_a_validation_failure(tmp_path):
    path = write_plugin(
        tmp_path,
        "badarg",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbations(registr):
            pass
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"badarg: validation": 1}
    [message] = host.messages
    assert "registr" in message and "badarg" in message
    assert "\n" not in message and "<module" not in message  # pluggy's three lines, joined
    assert message.endswith(" (geoforge_register_perturbations takes (register))")


def test_plugin_raising_at_import_is_reported_and_skipped(tmp_path):
    path = write_plugin(tmp_path, "broken", 'raise RuntimeError("no numpy for you")\n')
    missing = tmp_path / "missing.py"
    host = host_with(path, missing, env=False)
    assert host.failures == {"broken: to import": 1, "missing: to import": 1}
    assert any("broken" in m and "RuntimeError: no numpy for you" in m for m in host.messages)
    assert any("missing" in m and "FileNotFoundError" in m for m in host.messages)
    assert "geoforge_plugin_broken" not in sys.modules  # no half-initialised module left behind
    assert set(host.perturbations) >= BUILT_INS


def test_plugin_raising_while_registering_is_reported_and_the_others_still_work(tmp_path):
    path = write_plugin(
        tmp_path,
        "regboom",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            raise KeyError("lost my table")
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"regboom: in geoforge_register_perturbations": 1}
    assert "regboom" in host.messages[0] and "KeyError: 'lost my table'" in host.messages[0]
    assert set(host.perturbations) >= BUILT_INS


def test_register_rejects_objects_that_are_not_perturbations(tmp_path):
    path = write_plugin(
        tmp_path,
        "notaperturbation",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            register(object())
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"notaperturbation: in geoforge_register_perturbations": 1}
    assert host.messages[0].endswith(
        "TypeError: register() got an instance of object whose `name` is None, expected a word of letters, "
        "digits, _ . or -; `kind` is "
        "None, expected 'image' or 'caption'; `propose` is missing or not callable, expected a method "
        "propose(positive, rng)"
    )


@pytest.mark.parametrize(
    ("name", "kind", "problem"),
    [
        ('"p"', '"picture"', "`kind` is 'picture', expected 'image' or 'caption'"),
        ("3", '"image"', "`name` is 3, expected a word of letters, digits, _ . or -"),
        (
            '"x: in propose"',
            '"image"',
            "`name` is 'x: in propose', expected a word of letters, digits, _ . or -",
        ),
    ],
)
def test_register_names_the_field_that_is_wrong(tmp_path, name, kind, problem):
    path = write_plugin(
        tmp_path,
        "oneoff",
        f"""
        class P:
            name = {name}
            kind = {kind}

            def propose(self, positive, rng):
                yield from ()


        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            register(P())
        """,
    )
    host = host_with(path, env=False)
    assert host.messages == [
        f"plugin oneoff ({path}) failed in geoforge_register_perturbations: TypeError: "
        f"register() got an instance of P whose {problem}"
    ]


def test_a_propose_without_rng_is_refused_at_registration_not_on_the_first_positive(tmp_path):
    path = write_plugin(
        tmp_path,
        "norng",
        """
        class NoRng:
            name = "norng"
            kind = "caption"

            def propose(self, positive):
                yield from ()


        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            register(NoRng())
        """,
    )
    host = host_with(path, env=False)
    assert "norng" not in host.perturbations
    expected = "got an instance of NoRng whose `propose` takes (positive), expected (positive, rng)"
    assert host.messages[0].endswith(expected)


def test_duplicate_perturbation_names_are_rejected_with_a_clear_message(tmp_path):
    path = write_plugin(tmp_path, "copycat", NOOP.replace('"noop"', '"move_vertex"'))
    host = host_with(path, env=False)
    assert host.owner["move_vertex"] == "move_vertex"  # the first registration wins
    assert host.failures == {"copycat: in geoforge_register_perturbations": 1}
    assert "perturbation `move_vertex` is already registered by plugin move_vertex" in host.messages[0]


def test_duplicate_plugin_names_are_reported_not_silently_skipped(tmp_path):
    # Regression: a file plugin called retrieval.py was dropped without a word.
    path = write_plugin(tmp_path, "retrieval", NOOP)
    host = host_with(path, env=False)
    assert host.failures == {"retrieval: duplicate name": 1}
    assert "already loaded from geoforge_perturb.retrieval" in host.messages[0]
    assert next(p for p in host.plugins if p.name == "retrieval").source == "built-in"
    assert "noop" not in host.perturbations


EXTEND = """
@geoforge.hookimpl
def geoforge_register_constructions(register):
    register(
        "extend x a b",
        "x",
        pre="diff a b",
        facts="coll x a b, cong b a b x",
        sketch="pmirror a b",
        doc="x extends ab beyond b by |ab|",
    )
"""


@pytest.fixture
def extend_plugin(tmp_path):
    yield write_plugin(tmp_path, "extend_plugin", EXTEND)
    REGISTRY.pop("extend", None)  # the construction table is process-wide


def test_plugin_constructions_register_and_realise(extend_plugin):
    host = host_with(extend_plugin, env=False)
    info = next(p for p in host.plugins if p.name == "extend_plugin")
    assert info.registers == {"constructions": ["extend"]} and not host.failures
    assert REGISTRY["extend"].source == "extend_plugin"
    scene = realise(parse_program("A = free A; B = free B; C = extend C A B"), seed=3)
    np.testing.assert_allclose(scene.points["C"], 2 * scene.points["B"] - scene.points["A"], atol=1e-12)


def test_a_plugin_reloaded_by_another_host_reregisters_its_constructions(extend_plugin):
    # Regression: a second host (a worker, a test) failed with "construction `extend` is
    # already registered (by extend_plugin)".
    host_with(extend_plugin, env=False)
    again = host_with(extend_plugin, env=False)
    assert not again.failures, again.messages
    assert next(p for p in again.plugins if p.name == "extend_plugin").registers == {
        "constructions": ["extend"]
    }


def test_a_plugin_cannot_replace_a_built_in_construction(tmp_path):
    path = write_plugin(tmp_path, "hijack", EXTEND.replace('"extend x a b"', '"midpoint x a b"'))
    host = host_with(path, env=False)
    assert host.failures == {"hijack: in geoforge_register_constructions": 1}
    assert "construction `midpoint` is already registered" in host.messages[0]
    assert REGISTRY["midpoint"].source != "hijack"


def test_a_plugin_that_fails_while_registering_is_skipped_with_what_it_registered_first(tmp_path):
    """It was reported as failed, yet its first perturbation and construction stayed and ran."""
    path = write_plugin(
        tmp_path,
        "partial",
        EXTEND.replace("extend", "stretch")
        + """

class Good:
    name = "partial_good"
    kind = "caption"

    def propose(self, positive, rng):
        yield from ()


class Bad(Good):
    name = "partial_bad"
    kind = "Image"


@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Good())
    register(Bad())
""",
    )
    try:
        host = host_with(path, env=False)
        assert host.failures == {"partial: in geoforge_register_perturbations": 1}
        assert "partial_good" not in host.perturbations and "partial_good" not in host.owner
        assert "stretch" not in REGISTRY  # its construction, registered by the other hook, too
        info = next(p for p in host.plugins if p.name == "partial")
        assert info.registers == {} and info.error is not None
        assert not host.pm.has_plugin("partial")
    finally:
        REGISTRY.pop("stretch", None)
