"""llm_rewrite against a real HTTP server on loopback that speaks the chat-completions protocol
(geoforge_llm.loopback.ChatServer): every reply is verified or counted by reason, retries,
timeouts, the budget, the cache, concurrency, and a refused key reported once."""

from __future__ import annotations

import threading
import time

import geoforge_llm.client
import numpy as np
import pytest
from geoforge_llm.loopback import ChatServer, Reply

import geoforge.negatives
from geoforge.negatives import NegativeConfig, make_negatives
from geoforge.plugins import PluginHost, PluginSpec
from geoforge.render import render
from geoforge.testing import make_positive

KEY = "sk-test-0123456789-never-in-any-output"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LLM settings from the caller's environment, and no host or client of another test."""
    import os

    for name in [n for n in os.environ if n.startswith("GEOFORGE_LLM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(geoforge.negatives, "_HOSTS", {})
    monkeypatch.setattr(geoforge_llm.client, "_CLIENTS", {})
    monkeypatch.setenv("GEOFORGE_TEST_LLM_KEY", KEY)


def configure(monkeypatch: pytest.MonkeyPatch, server: ChatServer, **settings: object) -> None:
    """Turn the plugin on against ``server`` (cache off unless given)."""
    env = {
        "MODEL": "scripted",
        "BASE_URL": server.url,
        "API_KEY_ENV": "GEOFORGE_TEST_LLM_KEY",
        "CONCURRENCY": 1,
        "TIMEOUT": 5,
        "RETRIES": 1,
        "CACHE": "off",
        **{k.upper(): v for k, v in settings.items()},
    }
    for name, value in env.items():
        monkeypatch.setenv(f"GEOFORGE_LLM_{name}", str(value))


def llm_host() -> PluginHost:
    """A host with only the LLM plugin (no built-ins), as the entry point loads it."""
    return PluginHost(PluginSpec(modules=("geoforge_llm.plugin",), entry_points=False, env=False))


def right_triangle():  # type: ignore[no-untyped-def]
    """A right triangle ABC (right angle at A, AB = 3, AC = 4) with its altitude AD."""
    return make_positive(
        "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
        "given length A B 3; given length A C 4; draw polygon A B C",
        ["right A B C", "length A B 3", "length A C 4", "altitude A D B C"],
    )


def run(positive, host: PluginHost, **wanted: float):  # type: ignore[no-untyped-def]
    return make_negatives(
        positive, render(positive.scene), host, NegativeConfig(**wanted), np.random.default_rng(0)
    )


def fenced(program: str) -> Reply:
    return Reply(f"Here is the edited program:\n```geoforge\n{program}\n```")


def test_the_plugin_registers_nothing_until_a_model_is_configured(monkeypatch):
    host = llm_host()
    assert host.perturbations == {} and host.plugins[0].registers == {} and not host.failures
    monkeypatch.setenv("GEOFORGE_LLM_MODEL", "m")
    monkeypatch.setenv("GEOFORGE_LLM_CONCURRENCY", "zero")
    broken = llm_host()  # a bad setting is this plugin's failure, reported with the variable
    assert broken.perturbations == {} and "GEOFORGE_LLM_CONCURRENCY='zero'" in broken.messages[0]


def test_scripted_replies_are_verified_and_every_rejection_counted_by_reason(monkeypatch):
    positive = right_triangle()
    program = positive.program.text()
    script = [
        fenced(program.replace("D = foot D A B C", "D = midpoint D B C")),  # valid: AD no longer ⊥ BC
        Reply("I am sorry, but I cannot edit geometry programs."),
        Reply("```\nA = free A; B = lconst B A; C =\n```"),
        fenced(program.replace("foot D A B C", "perp_foot D A B C")),
        fenced(program),  # identical to the input
        fenced(program.replace("foot D A B C", "foot D A C B")),  # the same foot: breaks nothing
        Reply(status=429, retry_after_ms=10),  # rate limited, then ...
        fenced(program.replace("D = foot D A B C", "D = on_line D B C, aconst C B A D 70")),  # ... valid
        Reply(hang=30),  # hangs past the timeout, and again on the retry
        Reply(hang=30),
    ]
    with ChatServer(script) as server:
        configure(monkeypatch, server, per_positive=8, timeout=1.0)  # slack for a busy machine
        host = llm_host()
        found = run(positive, host, image=10, time_budget=120)
        assert server.count == 10  # 8 requests: one retried after the 429, one after a timeout
        assert set(server.authorizations) == {f"Bearer {KEY}"}
    assert dict(found.rejections) == {
        ("llm_rewrite", "no program in the reply"): 1,
        ("llm_rewrite", "malformed program"): 1,
        ("llm_rewrite", "unknown construction"): 1,
        ("llm_rewrite", "same program as the positive"): 1,
        ("llm_rewrite", "positive caption not false by the margin"): 1,
        ("llm_rewrite", "no reply: timeout"): 1,
    }
    assert [a.candidate.clause for a in found.image] == [4, 4]
    for accepted in found.image:
        assert accepted.plugin == "llm_rewrite" and accepted.png and accepted.pixel_diff > 0
        assert [c.kind for c, v in accepted.violated] == ["altitude"] and accepted.violated[0][1] >= 1.0
        assert [c.kind for c in accepted.candidate.breaks] == ["altitude"]  # only D changed
    assert not host.failures


def test_caption_edits_are_verified_by_their_text(monkeypatch):
    positive = right_triangle()
    text = positive.caption.text
    assert text == "right △ABC, right angle at A; AB = 3; AC = 4; AD ⊥ BC at D."
    script = [
        Reply(f"```\n{text.replace('AB = 3', 'AB = 5')}\n```"),  # false: AB is printed as 3
        Reply("```\nThe triangle in the figure is rather pretty.\n```"),
        Reply(f"```\n{text}\n```"),
        Reply(""),
    ]
    with ChatServer(script) as server:
        configure(monkeypatch, server, per_positive=4)
        found = run(positive, llm_host(), caption=10)
    assert [a.text for a in found.caption] == [text.replace("AB = 3", "AB = 5")]
    [(claim, v)] = found.caption[0].violated
    assert claim.to_json() == ["length", "A", "B", "5"] and v >= 1.0
    assert dict(found.rejections) == {
        ("llm_rewrite_caption", "caption text not readable"): 1,
        ("llm_rewrite_caption", "same text as the positive"): 1,
        ("llm_rewrite_caption", "no caption in the reply"): 1,
    }


def test_concurrency_bounds_the_requests_in_flight(monkeypatch):
    lock, live, most = threading.Lock(), [0], [0]

    def slow(body):  # type: ignore[no-untyped-def]
        with lock:
            live[0] += 1
            most[0] = max(most[0], live[0])
        time.sleep(0.3)
        with lock:
            live[0] -= 1
        return "no program, sorry"

    with ChatServer(slow) as server:
        configure(monkeypatch, server, per_positive=6, concurrency=2, timeout=5)
        found = run(right_triangle(), llm_host(), image=10)
        assert server.count == 6
    assert most[0] == 2  # requests overlap, but never more than --llm-concurrency at once
    assert dict(found.rejections) == {("llm_rewrite", "no program in the reply"): 6}


def test_the_request_budget_stops_sending_and_is_counted(monkeypatch):
    with ChatServer(lambda body: "prose only") as server:
        configure(monkeypatch, server, per_positive=4, budget=3)
        found = run(right_triangle(), llm_host(), image=10)
        assert server.count == 3
    assert dict(found.rejections) == {
        ("llm_rewrite", "no program in the reply"): 3,
        ("llm_rewrite", "request budget spent"): 1,
    }


def test_a_refused_key_is_said_once_without_the_key_counted_and_stops_requests(monkeypatch, capfd):
    with ChatServer(lambda body: Reply(status=401)) as server:
        configure(monkeypatch, server, per_positive=3)
        host = llm_host()
        runs = [run(right_triangle(), host, image=10) for _ in range(2)]
        assert server.count == 1  # nothing more is sent once the key is refused
    for found in runs:
        assert not found.image
        assert dict(found.rejections) == {("llm_rewrite", "no reply: key refused (HTTP 401)"): 3}
    assert not host.failures
    err = capfd.readouterr().err
    assert err == (
        "warning: llm_rewrite: the endpoint refused the API key (HTTP 401): check the key's variable; "
        "no more requests from this process\n"
    )
    assert KEY not in err


def test_a_rerun_is_served_from_the_cache_without_requests(monkeypatch, tmp_path):
    positive = right_triangle()
    edit = fenced(positive.program.text().replace("D = foot D A B C", "D = midpoint D B C"))
    with ChatServer(lambda body: edit) as server:
        configure(monkeypatch, server, per_positive=2, cache=tmp_path)
        first = run(positive, llm_host(), image=10, caption=2)
        sent = server.count
        monkeypatch.setattr(geoforge_llm.client, "_CLIENTS", {})  # a new run: nothing in memory
        second = run(positive, llm_host(), image=10, caption=2)
        assert sent == 4 and server.count == sent
    assert [a.png for a in second.image] == [a.png for a in first.image] and len(first.image) == 1
    assert second.rejections == first.rejections
    assert len(list(tmp_path.glob("*/*.json"))) == 4 and KEY not in "".join(
        p.read_text(encoding="utf-8") for p in tmp_path.glob("*/*.json")
    )


def test_the_negatives_do_not_depend_on_which_reply_comes_first(monkeypatch):
    from geoforge_llm.loopback import editing_reply

    def shuffled(body):  # type: ignore[no-untyped-def]
        time.sleep((hash(str(body["messages"])) % 5) / 50)  # replies finish out of order
        return editing_reply(body)

    results = []
    for concurrency in (1, 4):
        with ChatServer(shuffled) as server:
            configure(monkeypatch, server, per_positive=4, concurrency=concurrency, timeout=5)
            monkeypatch.setattr(geoforge_llm.client, "_CLIENTS", {})
            found = run(right_triangle(), llm_host(), image=10, caption=10)
        results.append(([a.png for a in found.image], [a.text for a in found.caption], found.rejections))
    assert results[0] == results[1]
    assert results[0][0]  # the rule-based editor's edits include accepted negatives
