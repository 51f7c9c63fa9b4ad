"""Q&A from the engine: exact answers, distractors from wrong readings, flips on image
negatives, and the independent re-check (``scripts/audit_qa.py``) of thousands of items."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from geoforge.caption import Claim
from geoforge.errors import GeoforgeError
from geoforge.exact import format_value, parse_value
from geoforge.program import parse_program
from geoforge.qa import Answer, QAConfig, QAError, QAItem, dump_items, load_items, make_qa
from geoforge.qa.choices import clearly_apart, pick, value_readings
from geoforge.qa.perception import RELATIONS
from geoforge.qa.reasoning import Value, alternatives, chain, exact_value, follows
from geoforge.realise import realise
from geoforge.sampler import load_recipe, sample_spec

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "corpora" / "smoke.toml"

#: A 3-4-5 right triangle (right angle at A) with the altitude AD, both legs printed.
RIGHT = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "mark right B A C; draw polygon A B C; given length A B 3; given length A C 4"
)
RIGHT_CLAIMS = [
    Claim("right", ("A", "B", "C")),
    Claim("altitude", ("A", "D", "B", "C")),
    Claim("length", ("A", "B", "3")),
    Claim("length", ("A", "C", "4")),
]


def _load_audit():
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("audit_qa", ROOT / "scripts" / "audit_qa.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_qa"] = module
    spec.loader.exec_module(module)
    return module


audit_qa = _load_audit()


def _scene(text: str, seed: int = 0):
    return realise(parse_program(text), seed=seed)


def _meta(key: str, scene, items, negatives: str = "{}") -> dict:
    """A ``KEY.json``-like record of an in-process figure (what the audit reads)."""
    return {
        "key": key,
        "program": scene.program.text(),
        "realise_seed": scene.seed,
        "points": [{"name": n, "x": float(p[0]), "y": float(p[1])} for n, p in scene.points.items()],
        "qa": dump_items(items),
        "negatives": negatives,
    }


def _generated(want: int, seed: int) -> list[dict]:
    """Records of smoke-recipe figures with their Q&A, until ``want`` items in all."""
    recipe = load_recipe(SMOKE)
    metas, total, index = [], 0, 0
    while total < want:
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        spec = sample_spec(recipe, rng)
        index += 1
        try:
            scene = realise(spec.program, seed=index, max_tries=6)
        except GeoforgeError:
            continue
        items = make_qa(scene, spec.claims, (), rng)
        total += len(items)
        metas.append(_meta(str(index), scene, items))
    return metas


def _recheck(metas: list[dict]) -> tuple[int, list]:
    failures = [f for m in metas for f in audit_qa.check_sample(m)]
    return sum(len(json.loads(m["qa"])["items"]) for m in metas), failures


# --- the independent re-check -------------------------------------------------------------


def test_independent_recheck_finds_no_mismatch_in_300_items() -> None:
    items, failures = _recheck(_generated(300, seed=21))
    assert items >= 300
    assert failures == []


@pytest.mark.slow
def test_independent_recheck_finds_no_mismatch_in_2000_items() -> None:
    metas = _generated(2000, seed=7)
    items, failures = _recheck(metas)
    assert items >= 2000
    assert failures == []
    kinds = {(i["type"], i["relation"]) for m in metas for i in json.loads(m["qa"])["items"]}
    assert len(kinds) == 10  # every perception relation and every reasoning relation is asked
    choices = [i for m in metas for i in json.loads(m["qa"])["items"] if i["format"] == "choice"]
    assert len(choices) >= 150
    assert all(len(set(i["choices"])) == 4 for i in choices)


@pytest.fixture(scope="module")
def planted() -> dict:
    """One generated record with a reasoning value and a multiple-choice question."""
    for meta in _generated(400, seed=5):
        items = json.loads(meta["qa"])["items"]
        if any(i["format"] == "choice" and i["type"] == "reasoning" for i in items) and any(
            i["answer_kind"] == "yesno" for i in items
        ):
            return meta
    raise AssertionError("no record with a reasoning choice question")


def _plant(meta: dict, change) -> list:  # type: ignore[no-untyped-def]
    items = json.loads(meta["qa"])["items"]
    change(items)
    return audit_qa.check_sample({**meta, "qa": json.dumps({"items": items})})


def test_recheck_catches_a_wrong_yes_no_answer(planted) -> None:
    def flip_answer(items: list[dict]) -> None:
        item = next(i for i in items if i["answer_kind"] == "yesno")
        item["response"] = "\\boxed{no}" if item["answer"] == "yes" else "\\boxed{yes}"

    problems = _plant(planted, flip_answer)
    assert len(problems) == 1 and "but the figure shows" in problems[0][2]


def test_recheck_catches_a_wrong_value_and_a_distractor_inside_the_margin(planted) -> None:
    def wrong_value(items: list[dict]) -> None:
        item = next(i for i in items if i["format"] == "choice" and i["type"] == "reasoning")
        right = item["choices"]["ABCD".index(item["correct"])]
        wrong = next(c for c in item["choices"] if c != right)
        item["response"] = "\\boxed{" + "ABCD"[item["choices"].index(wrong)] + "}"

    problems = [p for _, _, p in _plant(planted, wrong_value)]
    assert any("but the figure gives" in p for p in problems), problems

    def close_option(items: list[dict]) -> None:
        item = next(i for i in items if i["format"] == "choice" and i["type"] == "reasoning")
        k = next(j for j in range(4) if "ABCD"[j] != item["correct"])
        close = parse_value(item["answer"]) * sympy.Rational(21, 20)  # 5% off: inside the margins
        item["choices"][k] = format_value(close, "°" if item["answer_kind"] == "angle" else "")
        listed = " ".join(f"{'ABCD'[j]}. {c}" for j, c in enumerate(item["choices"]))
        item["prompt"] = item["prompt"].split(" Choices: ")[0] + " Choices: " + listed

    problems = [p for _, _, p in _plant(planted, close_option)]
    assert len(problems) == 1 and "too close to" in problems[0], problems


def test_recheck_catches_a_flip_the_negative_does_not_show() -> None:
    scene = _scene(RIGHT)
    negative = RIGHT.replace("D = foot D A B C", "D = midpoint D B C")
    record = json.dumps({"image": [{"program": negative}]})
    items = make_qa(
        scene, RIGHT_CLAIMS, [realise(parse_program(negative), seed=0, max_tries=3, reference=scene.points)]
    )
    assert audit_qa.check_sample(_meta("k", scene, items, record)) == []
    data = [i.to_json() for i in items]
    flipped = next(i for i in data if i["flips"])
    flipped["flips"][0]["display"] = flipped["display"]
    problems = audit_qa.check_sample({**_meta("k", scene, items, record), "qa": json.dumps({"items": data})})
    assert len(problems) == 1 and "flip on negative 0" in problems[0][2]


# --- answers ------------------------------------------------------------------------------


def test_perception_answers_read_the_right_triangle_and_flip_on_a_moved_foot() -> None:
    scene = _scene(RIGHT)
    moved = _scene(RIGHT.replace("D = foot D A B C", "D = midpoint D B C"))
    perp, on = RELATIONS["perpendicular"], RELATIONS["on_segment"]
    assert perp.answer(scene, ("A", "D", "B", "C")) == Answer("yesno", "yes")
    assert perp.answer(moved, ("A", "D", "B", "C")) == Answer("yesno", "no")
    assert on.answer(scene, ("D", "B", "C")) == on.answer(moved, ("D", "B", "C")) == Answer("yesno", "yes")
    assert on.answer(scene, ("A", "B", "C")) == Answer("yesno", "no")
    assert RELATIONS["midpoint"].answer(moved, ("B", "C")) == Answer("point", "D")
    assert RELATIONS["midpoint"].answer(scene, ("B", "C")) == Answer("point", "none")
    assert RELATIONS["marked_angle"].answer(scene, ("A",)) == Answer("angle", "90")
    assert RELATIONS["perpendicular"].answer(scene, ("A", "B", "B", "C")) == Answer("yesno", "no")
    assert perp.answer(scene, ("A", "Z", "B", "C")) is None  # a point the figure lacks


def test_make_qa_records_which_negative_flips_which_answer() -> None:
    scene = _scene(RIGHT)
    negatives = [
        None,  # a negative that does not realise any more
        realise(parse_program(RIGHT.replace("D = foot D A B C", "D = midpoint D B C")), seed=0),
    ]
    items = make_qa(scene, RIGHT_CLAIMS, negatives, np.random.default_rng(3), QAConfig(perception=12))
    perp = next(i for i in items if i.relation == "perpendicular" and {"A", "D"} <= set(i.subject))
    assert perp.answer == Answer("yesno", "yes")
    assert [(f.tile, f.answer.value) for f in perp.flips] == [(1, "no")]
    assert all(f.tile == 1 for i in items for f in i.flips)
    assert items[0].flips  # flipped questions come first


def test_reasoning_values_are_exact_and_follow_from_the_givens() -> None:
    scene = _scene(RIGHT)
    others = alternatives(scene, RIGHT_CLAIMS)
    assert len(others) == 1  # another seed; every nudged literal breaks a given or the right angle
    expected = {
        ("length", "B", "C"): "5",
        ("length", "A", "D"): "12/5",
        ("ratio", "B", "D", "D", "C"): "9/16",
    }
    for (relation, *points), value in expected.items():
        v = Value(relation, tuple(points))
        assert exact_value(v, scene) == Answer(relation, value)
        assert follows(v, scene, others)
    assert chain(scene, RIGHT_CLAIMS, ("A", "D"))[:2] == ("given length A B 3", "given length A C 4")
    assert "perp A D B C" in chain(scene, RIGHT_CLAIMS, ("A", "D"))


@pytest.mark.parametrize(("shown", "asked"), [(False, False), (True, True)])
def test_a_value_hidden_from_the_figure_is_never_asked(shown: bool, asked: bool) -> None:
    text = "A = free A; B = lconst B A 5; C = s_angle B A C 40, lconst C A 5; draw polygon A B C"
    claims = [Claim("isosceles", ("A", "B", "C"))]
    if shown:
        text += "; given angle B A C 40"
        claims.append(Claim("angle", ("B", "A", "C", "40")))
    scene = _scene(text)
    base = Value("angle", ("A", "B", "C"))
    assert exact_value(base, scene) == Answer("angle", "70")
    assert follows(base, scene, alternatives(scene, claims)) is asked


def test_distractors_are_the_wrong_readings_named_in_the_issue() -> None:
    angle = pick(Answer("angle", "75/2"), value_readings(Answer("angle", "75/2")))
    assert [(d.answer.display(), d.reading) for d in angle] == [
        ("285/2°", "supplement"),
        ("105/2°", "complement"),
        ("75/4°", "half"),
    ]
    length = pick(Answer("length", "5"), value_readings(Answer("length", "5"), [Answer("length", "3")]))
    assert [(d.answer.value, d.reading) for d in length] == [
        ("3", "another segment"),
        ("5/2", "half"),
        ("10", "double"),
    ]
    ratio = pick(Answer("ratio", "9/16"), value_readings(Answer("ratio", "9/16")))
    assert [d.reading for d in ratio] == ["inverted ratio", "the other part", "half"]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 359), st.integers(1, 2))
def test_every_picked_angle_distractor_is_in_range_and_clearly_wrong(num: int, den: int) -> None:
    value = sympy.Rational(num, den)
    if not 0 < value < 180:
        return
    answer = Answer("angle", str(value))
    picked = pick(answer, value_readings(answer, [Answer("angle", "45")]))
    values = [float(value)] + [d.answer.number() for d in picked]
    assert all(0 < v < 180 for v in values)
    assert all(clearly_apart("angle", x, y) for i, x in enumerate(values) for y in values[i + 1 :])
    assert all(d.reading in ("supplement", "complement", "another angle", "half", "double") for d in picked)


# --- records ------------------------------------------------------------------------------


def test_items_round_trip_through_json_and_make_the_same_prompt() -> None:
    scene = _scene(RIGHT)
    items = make_qa(scene, RIGHT_CLAIMS, (), np.random.default_rng(1), QAConfig(choice=1.0, reasoning=3))
    assert load_items(dump_items(items)) == items
    choice = next(i for i in items if i.format == "choice")
    assert choice.prompt().startswith(choice.question + " Choices: A. ")
    assert choice.response() == "\\boxed{" + choice.correct + "}"
    assert choice.options()[choice.order] == choice.answer


def test_make_qa_is_deterministic_given_the_generator() -> None:
    scene = _scene(RIGHT)
    a = make_qa(scene, RIGHT_CLAIMS, (), np.random.default_rng(9))
    b = make_qa(scene, RIGHT_CLAIMS, (), np.random.default_rng(9))
    assert dump_items(a) == dump_items(b)


def test_a_bad_qa_record_names_the_sample_and_the_field() -> None:
    with pytest.raises(QAError, match="00000003: `qa` is not geoforge Q&A JSON"):
        load_items("[1, 2]", "00000003")
    item = make_qa(_scene(RIGHT), RIGHT_CLAIMS, (), np.random.default_rng(0))[0].to_json()
    with pytest.raises(QAError, match="unknown answer_kind 'colour'"):
        QAItem.from_json({**item, "answer_kind": "colour"})
    with pytest.raises(QAError, match="bad field 'flips'"):
        QAItem.from_json({k: v for k, v in item.items() if k != "flips"})


# --- the corpus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qa_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("qa") / "corpus"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "geoforge.cli",
            "generate",
            str(SMOKE),
            "--out",
            str(out),
            "--n",
            "6",
            "--image-negatives",
            "3",
            "--qa",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_generate_qa_writes_items_with_flips_that_the_audit_confirms(qa_corpus) -> None:
    out, manifest = qa_corpus
    counts = manifest["qa"]["counts"]
    assert manifest["qa"]["config"] == dataclasses.asdict(QAConfig())
    assert counts["items"] == sum(counts["by_type"].values()) >= 30
    assert counts["flipped"] >= 3
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_qa.py"), str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["samples"] == 6 and report["failures"] == []
    assert sum(report["items"].values()) == counts["items"]


def test_audit_qa_refuses_a_corpus_without_qa(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_qa.py"), str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "no shard-*.tar files" in result.stderr
