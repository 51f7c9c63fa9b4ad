"""Plugins cannot bypass or corrupt verification (issue 8): a read-only positive per plugin, a
lazy check cap, a wall-clock budget per plugin and positive, and failures that are counted."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
from plugin_helpers import (  # noqa: F401  (_no_env_plugins is an autouse fixture)
    BUILT_INS,
    _no_env_plugins,
    host_with,
    png_of,
    write_plugin,
)

from geoforge.negatives import NegativeConfig, Negatives, make_negatives

pytest_plugins = ["geoforge.testing"]  # the geoforge_positive fixture


def kept(negatives: Negatives) -> list[tuple[object, ...]]:
    """Everything about the kept negatives that ends up in a corpus, bytes included."""
    return [
        (kind, a.plugin, repr(a.candidate), a.png, a.text, repr(a.violated), a.pixel_diff)
        for kind in ("image", "caption", "retrieval")
        for a in getattr(negatives, kind)
    ]


def run(host, positive, **config):
    return make_negatives(
        positive, png_of(positive), host, NegativeConfig(**config), np.random.default_rng(0)
    )


# --- a read-only positive ----------------------------------------------------------------------

MUTATOR = """
class Shifter:
    name = "shifter"
    kind = "image"

    def propose(self, positive, rng):
        shift = rng.normal(size=2) * 0.3 * positive.scene.scale  # randomness first, like a real plugin
        p = "A"
        {mutation}
        yield from ()

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Shifter())
"""

MUTATIONS = {
    # the plugin: shift a point in place
    "in place": ("positive.scene.points[p] += shift", "ValueError: output array is read-only"),
    "assign": (
        "positive.scene.points[p] = positive.scene.points[p] + shift",
        "TypeError: 'mappingproxy' object does not support item assignment",
    ),
    "circle": ("positive.scene.circles[0].center[:] += shift", "ValueError: output array is read-only"),
    # a deliberate bypass reaches only the plugin's own copy: no error, and no harm
    "bypass": (
        "pt = positive.scene.points[p]; pt.flags.writeable = True; pt += shift",
        None,
    ),
}


@pytest.mark.parametrize("how", list(MUTATIONS))
def test_a_plugin_mutating_the_positive_cannot_change_what_the_built_ins_are_verified_against(
    tmp_path, geoforge_positive, how
):
    mutation, error = MUTATIONS[how]
    positive = geoforge_positive
    if how == "circle":  # the fixture draws no circle: give it one to mutate
        from geoforge.testing import make_positive

        positive = make_positive(
            "A B C = triangle A B C; O = circle O A B C; draw circumcircle A B C", ["circumcentre O A B C"]
        )
    before = {n: p.copy() for n, p in positive.scene.points.items()}
    config = {"image": 3, "caption": 3, "retrieval": 0}
    clean = run(host_with(env=False), positive, **config)
    host = host_with(write_plugin(tmp_path, "shifter", MUTATOR.format(mutation=mutation)), env=False)
    dirty = run(host, positive, **config)

    assert kept(clean) and kept(dirty) == kept(clean)  # byte for byte the same negatives
    assert dirty.rejections == clean.rejections
    for name, p in positive.scene.points.items():  # the host's positive is untouched
        assert p.tobytes() == before[name].tobytes() and p.flags.writeable
    if error is None:
        assert not host.failures
        return
    assert host.failures == {"shifter: in propose": 1}
    [message] = host.messages
    assert message.startswith("plugin shifter (") and error in message
    assert "read-only copy of the positive" in message  # and the hint says what to do instead


def test_each_plugin_reads_its_own_frozen_copy(geoforge_positive):
    from geoforge.perturb import read_only

    scene = geoforge_positive.scene
    one, two = read_only(geoforge_positive), read_only(geoforge_positive)
    assert one.scene.points is not two.scene.points is not scene.points
    for name, p in scene.points.items():
        assert one.scene.points[name].tobytes() == p.tobytes()
        assert not one.scene.points[name].flags.writeable
        assert not np.shares_memory(one.scene.points[name], p)
    assert not one.scene.coords.flags.writeable and one.scene.scale == scene.scale
    with pytest.raises(TypeError, match="mappingproxy"):
        one.scene.points["Z"] = np.zeros(2)  # type: ignore[index]
    with pytest.raises(TypeError, match="mappingproxy"):
        one.scene.meta["note"] = 1  # type: ignore[index]
    one.caption.claims.clear()  # a copy: allowed, and seen by nobody else
    assert two.caption.claims == geoforge_positive.caption.claims
    assert one.program is geoforge_positive.program  # immutable, so shared


# --- the check cap is applied lazily -----------------------------------------------------------

ENDLESS = """
from geoforge.caption import Claim
from geoforge.perturb import CaptionCandidate

class Endless:
    name = "endless"
    kind = "caption"
    pulled = 0

    def propose(self, positive, rng):
        true = Claim("perpendicular", ("A", "B", "A", "C"))  # holds: never accepted
        for _ in range(20_000):  # "endless"; bounded so that the old, draining host fails, not hangs
            Endless.pulled += 1
            yield CaptionCandidate((*positive.caption.claims, true), "a true claim", (true,))

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Endless())
"""


def test_an_endless_generator_stops_at_the_check_cap(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "endless", ENDLESS), env=False, entry_points=False)
    endless = host.perturbations["endless"]
    negatives = run(host, geoforge_positive, caption=2, max_checks=25)
    assert not negatives.caption
    assert sum(negatives.rejections.values()) == 25
    assert endless.pulled == 25  # not one candidate more than the cap
    assert not host.failures
    assert len(host.propose(endless, geoforge_positive, np.random.default_rng(0), limit=7)) == 7
    assert endless.pulled == 32


# --- a time budget per plugin and positive -----------------------------------------------------

SLOW = """
import time

class Slow:
    name = "slow"
    kind = "caption"

    def propose(self, positive, rng):
        {body}
        yield from ()

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Slow())
"""

BLOCKERS = {
    "sleep": "time.sleep(1e9)",
    "spin": "while True: pass",
    # a plugin that catches Exception does not swallow the timeout (a BaseException)
    "swallow": "while True:\n            try:\n                time.sleep(1e9)\n"
    "            except Exception:\n                pass",
}


@pytest.mark.parametrize("how", list(BLOCKERS))
def test_a_plugin_blocking_in_its_first_next_is_skipped_within_its_budget(tmp_path, geoforge_positive, how):
    host = host_with(write_plugin(tmp_path, "slow", SLOW.format(body=BLOCKERS[how])), env=False)
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30)  # someone else's timer, which must survive
    try:
        start = time.monotonic()
        negatives = run(host, geoforge_positive, caption=3, time_budget=0.5)
        elapsed = time.monotonic() - start
        assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL and not fired
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        # Restored, less the time spent (to within scheduling delays on a loaded machine).
        assert 30 - elapsed - 0.5 < left <= 30 - elapsed + 0.25, (left, elapsed)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert 0.5 <= elapsed < 10  # about 0.55 s on an idle machine; not forever
    assert host.failures == {"slow: time budget": 1}
    assert "exceeded its time budget of 0.5 s" in host.messages[0]
    assert len(negatives.caption) == 3 and {a.plugin for a in negatives.caption} <= BUILT_INS


def test_the_alarm_is_cleared_and_the_default_handler_restored(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "slow", SLOW.format(body="time.sleep(1e9)")), env=False)
    handler = signal.getsignal(signal.SIGALRM)
    run(host, geoforge_positive, caption=2, time_budget=0.3)
    run(host, geoforge_positive, caption=2, time_budget=0.3)  # budgets are per positive
    assert host.failures == {"slow: time budget": 2}
    assert signal.getsignal(signal.SIGALRM) == handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


DRIP = """
import time

class Drip:
    name = "drip"
    kind = "caption"
    pulled = 0

    def propose(self, positive, rng):
        while True:
            time.sleep(0.2)
            Drip.pulled += 1
            yield None  # garbage, dropped: only the time counts

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Drip())
"""


def test_outside_the_main_thread_the_budget_is_checked_between_candidates(tmp_path, geoforge_positive):
    # No SIGALRM there: a plugin is stopped once a next() returns past its budget.
    host = host_with(write_plugin(tmp_path, "drip", DRIP), env=False, entry_points=False)
    out: list[object] = []
    thread = threading.Thread(
        target=lambda: out.append(
            host.propose(host.perturbations["drip"], geoforge_positive, np.random.default_rng(0), budget=0.5)
        )
    )
    start = time.monotonic()
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and out == [[]]
    assert time.monotonic() - start < 5
    pulled = host.perturbations["drip"].pulled
    assert 1 <= pulled <= 3  # 3 on an idle machine: 0.6 s > 0.5 s after the third
    assert host.failures == {"drip: garbage": pulled - 1, "drip: time budget": 1}


# --- a plugin that raises ----------------------------------------------------------------------

RAISES = """
class Raises:
    name = "{name}"
    kind = "caption"

    def propose(self, positive, rng):
        raise {exception}
        yield

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Raises())
"""


def test_plugins_that_raise_or_exit_are_reported_with_their_message_and_the_run_goes_on(
    tmp_path, geoforge_positive
):
    quitter = write_plugin(tmp_path, "quitter", RAISES.format(name="quitter", exception='SystemExit("bye")'))
    raiser = write_plugin(
        tmp_path, "raiser", RAISES.format(name="raiser", exception='LookupError("no such point Q")')
    )
    host = host_with(quitter, raiser, env=False)
    negatives = run(host, geoforge_positive, caption=3)
    assert len(negatives.caption) == 3 and {a.plugin for a in negatives.caption} <= BUILT_INS
    assert host.failures == {"quitter: in propose": 1, "raiser: in propose": 1}
    assert sorted(host.messages) == [
        f"plugin quitter ({quitter}) failed in propose: SystemExit: bye",
        f"plugin raiser ({raiser}) failed in propose: LookupError: no such point Q",
    ]
    run(host, geoforge_positive, caption=3)  # counted per positive, reported once
    assert host.failures == {"quitter: in propose": 2, "raiser: in propose": 2}
    assert len(host.messages) == 2


# --- generators that misbehave at their end -----------------------------------------------------

ENDINGS = """
import time


class Ending:
    name = "ending"
    kind = "caption"

    def propose(self, positive, rng):
        {body}


@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Ending())
"""

BAD_ENDINGS = {
    # found by a new user: GeneratorExit from the plugin ended the whole run with a traceback
    "raises GeneratorExit": ("raise GeneratorExit('done')\n        yield", "ending: in propose"),
    # close() on a generator that yields again raises RuntimeError: counted, not ignored
    "ignores close": (
        "while True:\n            try:\n                yield 'junk'\n            except GeneratorExit:\n"
        "                pass",
        "ending: in close",
    ),
    # a clean-up that hangs costs its budget and is counted
    "hangs in finally": (
        "try:\n            yield 'junk'\n        finally:\n            time.sleep(60)",
        "ending: time budget",
    ),
}


@pytest.mark.parametrize("how", list(BAD_ENDINGS))
def test_a_generator_that_misbehaves_at_its_end_is_counted_and_the_run_goes_on(
    tmp_path, geoforge_positive, how
):
    body, failure = BAD_ENDINGS[how]
    host = host_with(write_plugin(tmp_path, "ending", ENDINGS.format(body=body)), env=False)
    start = time.monotonic()
    negatives = run(host, geoforge_positive, caption=3, time_budget=0.5)
    assert time.monotonic() - start < 10
    assert len(negatives.caption) == 3 and {a.plugin for a in negatives.caption} <= BUILT_INS
    assert host.failures[failure] == 1, host.failures


EXTRA = """
from geoforge.caption import Claim
from geoforge.perturb import CaptionCandidate


class Extra:
    name = "extra"
    kind = "caption"

    def propose(self, positive, rng):
        for _ in range(int(rng.integers(1, 4))):  # draws from its generator, like a real plugin
            yield CaptionCandidate((*positive.caption.claims, Claim("equal", ("A", "B", "A", "C"))), "x", ())


@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Extra())
"""


def test_another_plugin_does_not_change_the_words_of_the_built_ins_negatives(tmp_path):
    # Found by a new user: adding a plugin re-worded built-in caption negatives ("MA ∥ NB"
    # became "MA is parallel to NB"), since the words were drawn from a shared generator.
    from geoforge.testing import make_positive

    positive = make_positive(
        "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
        "given length A B 3; draw polygon A B C",
        ["right A B C", "length A B 3", "altitude A D B C"],
        style="descriptive",
    )
    alone = run(host_with(env=False), positive, caption=6)
    both = run(host_with(write_plugin(tmp_path, "extra", EXTRA), env=False), positive, caption=6)
    builtin = [a.text for a in alone.caption]
    assert len(builtin) == 6
    others = [a.text for a in both.caption if a.plugin != "extra"]
    assert others and all(text in builtin for text in others)
