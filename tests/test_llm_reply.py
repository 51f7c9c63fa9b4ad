"""The llm_rewrite plugin's pieces without a server: reading replies, settings, prompts, the
reply cache and the request budget."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from geoforge_llm.client import Budget, ReplyCache, request_key, spent
from geoforge_llm.config import ConfigError, LLMConfig
from geoforge_llm.prompts import load_prompts
from geoforge_llm.reply import extract_caption, extract_program, program_texts, swaps_claim, swaps_relation

from geoforge.caption import Claim
from geoforge.program import parse_program

TRIANGLE = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; draw polygon A B C"
)
ORIGINAL = parse_program(TRIANGLE)
EDITED = TRIANGLE.replace("s_angle B A C 90", "s_angle B A C 70")


# --- programs out of replies ---------------------------------------------------------------------


def test_a_fenced_program_is_read_and_the_prose_around_it_ignored():
    reply = f"Sure! I changed the angle.\n```geoforge\n{EDITED}\n```\nThis makes ∠BAC 70°."
    program, reason = extract_program(reply, ORIGINAL)
    assert reason == "" and program is not None
    assert program.text() == parse_program(EDITED).text()


def test_a_program_written_one_clause_per_line_without_fence_is_read():
    lines = "\n".join(c.strip() for c in EDITED.split(";"))
    reply = f"Here is the program:\n{lines}\nI hope this helps."
    assert program_texts(reply) == ["; ".join(c.strip() for c in EDITED.split(";"))]
    program, reason = extract_program(reply, ORIGINAL)
    assert (
        reason == ""
        and program is not None
        and program.canonical_hash() == parse_program(EDITED).canonical_hash()
    )


def test_the_first_fence_that_changes_the_program_wins_over_a_copy_of_the_input():
    reply = f"Original:\n```\n{TRIANGLE}\n```\nEdited:\n```\n{EDITED}\n```"
    program, _ = extract_program(reply, ORIGINAL)
    assert program is not None and "s_angle B A C 70" in program.text()


def test_reasoning_blocks_and_comments_are_dropped():
    reply = f"<think>maybe ```A = nonsense``` first</think>```geoforge\n# the edit\n{EDITED}  # done\n```"
    program, reason = extract_program(reply, ORIGINAL)
    assert reason == "" and program is not None and "s_angle B A C 70" in program.text()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("I cannot do that.", "no program in the reply"),
        ("", "no program in the reply"),
        ("```\nThe triangle gets a smaller angle.\n```", "no program in the reply"),
        (f"```\n{TRIANGLE.replace('foot D', 'perp_foot D')}\n```", "unknown construction"),
        ("```\nA = free A; B = lconst B A; C =\n```", "malformed program"),
        ("```\nA = free A; B = free A\n```", "malformed program"),
    ],
)
def test_a_reply_without_a_usable_program_gets_its_reason(reply, reason):
    assert extract_program(reply, ORIGINAL) == (None, reason)


def test_a_copy_of_the_input_is_returned_for_the_verifier_to_reject():
    program, reason = extract_program(f"```\n{TRIANGLE}\n```", ORIGINAL)
    assert reason == "" and program is not None and program.canonical_hash() == ORIGINAL.canonical_hash()


# --- captions out of replies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "```\nright △ABC; AB = 5.\n```",
        'Caption: "right △ABC; AB = 5."',
        "right △ABC;\nAB = 5.",
        "“right △ABC; AB = 5.”",
    ],
)
def test_the_caption_is_read_fenced_quoted_or_prefixed(reply):
    assert extract_caption(reply) == "right △ABC; AB = 5."


def test_an_empty_reply_has_no_caption():
    assert extract_caption("``` \n```") == "" and extract_caption("  ") == ""


# --- parallel ↔ perpendicular ------------------------------------------------------------------


def test_turning_a_perpendicular_clause_into_a_parallel_is_a_swap():
    old = parse_program("A = free A; B = free B; C = free C; D = on_tline D C A B")
    assert swaps_relation(old, parse_program("A = free A; B = free B; C = free C; D = on_pline D C A B"))
    assert not swaps_relation(old, parse_program("A = free A; B = free B; C = free C; D = on_tline D A B C"))


def test_a_caption_that_calls_perpendicular_lines_parallel_is_a_swap():
    old = [Claim("perpendicular", ("A", "B", "C", "D"))]
    assert swaps_claim(old, [Claim("parallel", ("D", "C", "B", "A"))])
    assert not swaps_claim(old, [Claim("parallel", ("A", "C", "B", "D"))])
    assert not swaps_claim(old, [Claim("equal", ("A", "B", "C", "D"))])


# --- settings --------------------------------------------------------------------------------------


def test_the_plugin_is_off_without_a_model():
    assert LLMConfig.from_env({}) is None
    assert LLMConfig.from_env({"GEOFORGE_LLM_MODEL": "  ", "GEOFORGE_LLM_BASE_URL": "http://x"}) is None


def test_settings_round_trip_through_the_environment(tmp_path):
    config = LLMConfig(
        "qwen", base_url="http://127.0.0.1:9/v1", budget=7, cache=str(tmp_path), timeout=2.5, allow_swap=True
    )
    env = config.to_env()
    assert LLMConfig.from_env(env) == config
    assert env["GEOFORGE_LLM_ALLOW_SWAP"] == "1" and env["GEOFORGE_LLM_LEDGER"] == ""
    assert LLMConfig.from_env({**env, "GEOFORGE_LLM_CACHE": "off"}).cache is None  # type: ignore[union-attr]


def test_the_cache_defaults_to_the_user_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = LLMConfig.from_env({"GEOFORGE_LLM_MODEL": "m"})
    assert config is not None and config.cache == str(tmp_path / "geoforge" / "llm")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CONCURRENCY", "many", "GEOFORGE_LLM_CONCURRENCY='many': expected a number"),
        ("CONCURRENCY", "0", "GEOFORGE_LLM_CONCURRENCY=0: expected a whole number ≥ 1"),
        ("BACKEND", "gemini", "GEOFORGE_LLM_BACKEND='gemini': expected openai or transformers"),
        ("ALLOW_SWAP", "maybe", "GEOFORGE_LLM_ALLOW_SWAP='maybe': expected 0 or 1"),
        ("API_KEY_ENV", "sk-abc-123", "GEOFORGE_LLM_API_KEY_ENV='sk-abc-123': expected the name of"),
    ],
)
def test_a_bad_setting_names_its_variable(name, value, message):
    with pytest.raises(ConfigError) as e:
        LLMConfig.from_env({"GEOFORGE_LLM_MODEL": "m", f"GEOFORGE_LLM_{name}": value})
    assert str(e.value).startswith(message)


def test_the_time_budget_covers_every_attempt_of_every_round():
    # 5 requests in 2 lanes: 3 rounds of (3 attempts × 20 s + 2 backoffs × 8 s), plus 10 s.
    assert LLMConfig("m", concurrency=2, per_positive=5, timeout=20, retries=2).time_budget() == 10 + 3 * 76
    assert (
        LLMConfig("m", backend="transformers", concurrency=8, per_positive=2, timeout=1, retries=0).lanes == 1
    )


# --- prompts ---------------------------------------------------------------------------------------


def test_the_prompt_hash_is_the_sha256_of_the_shipped_file():
    prompts = load_prompts()
    raw = (Path(__file__).parents[1] / "plugins/geoforge_llm/prompts/v1.toml").read_bytes()
    assert prompts.sha256 == hashlib.sha256(raw).hexdigest() and prompts.hash == prompts.sha256[:16]
    assert set(prompts.data["tasks"]["image"]) == set(LLMConfig("m").tasks("image"))  # type: ignore[arg-type]
    assert set(prompts.data["tasks"]["caption"]) == set(LLMConfig("m").tasks("caption"))  # type: ignore[arg-type]


def test_messages_carry_the_program_caption_facts_and_one_instruction():
    from geoforge.testing import make_positive

    geoforge_positive = make_positive(TRIANGLE, ["right A B C", "altitude A D B C"])
    prompts = load_prompts()
    system, user = prompts.messages("image", geoforge_positive, "value", 0, allow_swap=False)
    assert "x = foot x a b c  # x is the foot of the perpendicular from a to bc" in system["content"]
    assert geoforge_positive.program.text() in user["content"]
    assert geoforge_positive.caption.text in user["content"]
    assert "perp A D B C" in user["content"]
    assert user["content"].endswith(
        str(prompts.data["tasks"]["image"]["value"]) + str(prompts.data["text"]["no_swap"])  # type: ignore[index]
    )
    _, second = prompts.messages("caption", geoforge_positive, "relabel", 1, allow_swap=True)
    assert (
        "This is variant 2" in second["content"] and "parallel" not in second["content"].split("Change:")[1]
    )


# --- cache and budget ------------------------------------------------------------------------------


def test_the_cache_key_is_the_whole_request_and_entries_survive_a_new_cache_object(tmp_path):
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.0}
    key = request_key(request)
    assert key != request_key({**request, "model": "n"}) and key == request_key(
        dict(reversed(request.items()))
    )
    ReplyCache(tmp_path).put(key, "reply ✓", {"model": "m", "task": "value"})
    assert ReplyCache(tmp_path).get(key) == "reply ✓"
    stored = json.loads((tmp_path / key[:2] / f"{key}.json").read_text(encoding="utf-8"))
    assert stored == {"model": "m", "task": "value", "reply": "reply ✓"}
    assert [p.name for p in (tmp_path / key[:2]).iterdir()] == [f"{key}.json"]  # no temporary left


def test_a_corrupt_cache_entry_is_a_miss(tmp_path):
    key = request_key({"x": 1})
    (tmp_path / key[:2]).mkdir()
    (tmp_path / key[:2] / f"{key}.json").write_text("{not json", encoding="utf-8")
    assert ReplyCache(tmp_path).get(key) is None and ReplyCache(None).get(key) is None


def test_a_ledger_shares_one_budget_between_processes(tmp_path):
    first, second = Budget(5, str(tmp_path)), Budget(5, str(tmp_path))  # as two workers would
    taken = [b.take() for b in (first, second, first, second, first, second, first)]
    assert taken == [True] * 5 + [False] * 2
    assert spent(tmp_path) == 5
    alone = Budget(2)
    assert [alone.take() for _ in range(3)] == [True, True, False]
    assert all(Budget(None).take() for _ in range(100))
