"""Making the Q&A of one figure, and adding it to corpus samples.

:func:`make_qa` asks perception questions (:mod:`geoforge.qa.perception`) and reasoning
questions (:mod:`geoforge.qa.reasoning`) of one positive Scene, and records on which of its
image negatives each perception answer flips. :func:`add_qa` does it for a stored corpus
sample: the positive is re-realised from ``KEY.json`` (or taken from the sample when it
carries its scene) and each image negative from the program
its ``negatives`` record keeps (the positive's seed, its points as reference, as the verifier
realised it), and the items go into ``KEY.json`` as the JSON string ``qa``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from geoforge.caption import Claim
from geoforge.errors import GeoforgeError
from geoforge.qa.choices import arrange, pick, value_readings
from geoforge.qa.items import Answer, Flip, QAItem, dump_items, load_items
from geoforge.qa.perception import RELATIONS, angle_marks, stated_facts
from geoforge.qa.reasoning import (
    Value,
    alternatives,
    candidates,
    chain,
    exact_value,
    follows,
    setup,
    stated_values,
)
from geoforge.scene import Scene

if TYPE_CHECKING:
    from geoforge.generate import Sample

#: Subjects tried per perception relation, and values per reasoning relation, per figure.
TRIED = 24


@dataclass(frozen=True)
class QAConfig:
    """How many questions to ask of each figure: up to ``perception`` perception and
    ``reasoning`` reasoning questions; ``choice`` is the share asked as multiple choice
    among those that have three clear distractors."""

    perception: int = 6
    reasoning: int = 2
    choice: float = 0.5


@dataclass(frozen=True)
class _Asked:
    relation: str
    subject: tuple[str, ...]
    answer: Answer
    flips: tuple[Flip, ...]


def _shuffled(items: list, rng: np.random.Generator, cap: int) -> list:  # type: ignore[type-arg]
    order: list[int] = [int(i) for i in rng.permutation(len(items))] if items else []
    return [items[i] for i in order][:cap]


def _perception(
    scene: Scene,
    claims: Sequence[Claim],
    negatives: Sequence[Scene | None],
    rng: np.random.Generator,
    want: int,
) -> list[_Asked]:
    """Up to ``want`` perception questions, those whose answer flips on a negative first, then
    spread over relations and over answers (as many "no" as "yes")."""
    facts = stated_facts(claims)
    pool: list[_Asked] = []
    for relation in RELATIONS.values():
        seen = set()
        for subject in _shuffled(list(dict.fromkeys(relation.propose(scene, facts))), rng, TRIED):
            answer = relation.answer(scene, subject)
            if answer is None or relation.same(scene, subject) in seen:
                continue
            seen.add(relation.same(scene, subject))
            flips = tuple(
                Flip(i, other)
                for i, neg in enumerate(negatives)
                if neg is not None
                and (other := relation.answer(neg, subject)) is not None
                and other != answer
            )
            pool.append(_Asked(relation.name, subject, answer, flips))
    chosen: list[_Asked] = []
    uses: Counter[tuple[str, str]] = Counter()
    while pool and len(chosen) < want:
        best = min(
            range(len(pool)),
            key=lambda i: (
                not pool[i].flips,
                uses[(pool[i].relation, pool[i].answer.value if pool[i].answer.kind == "yesno" else "")],
                sum(n for (r, _), n in uses.items() if r == pool[i].relation),
                i,
            ),
        )
        picked = pool.pop(best)
        uses[(picked.relation, picked.answer.value if picked.answer.kind == "yesno" else "")] += 1
        chosen.append(picked)
    return chosen


def _lines_at(scene: Scene, angle: tuple[str, ...]) -> tuple[str, frozenset[int]]:
    """The vertex of ``angle`` (a, b, c) and the drawn lines its sides lie on: two angles with
    the same key are equal or supplementary, so a marked angle tells both."""
    a, b, c = angle
    lines = frozenset(i for i, g in enumerate(scene.lines) if b in g and (a in g or c in g))
    return b, lines


def _reasoning(
    scene: Scene, claims: Sequence[Claim], rng: np.random.Generator, want: int
) -> list[tuple[Value, Answer]]:
    """Up to ``want`` reasoning values that follow from the stated claims, one relation after
    another (length, angle, ratio), each with its exact answer. Values stated outright, angles
    on the lines of a marked angle (:func:`_lines_at`) and ratios of 1 are not asked."""
    if want == 0:
        return []
    stated = stated_values(claims)
    marked = {_lines_at(scene, a) for _, a in angle_marks(scene)}
    by_relation: dict[str, list[Value]] = {}
    for v in candidates(scene):
        if (v.relation, *v.points) in stated or (
            v.relation == "angle" and _lines_at(scene, v.points) in marked
        ):
            continue
        by_relation.setdefault(v.relation, []).append(v)
    others = alternatives(scene, claims)
    found: dict[str, list[tuple[Value, Answer]]] = {}
    for relation, values in by_relation.items():
        kept = found.setdefault(relation, [])
        for v in _shuffled(values, rng, TRIED):
            if len(kept) == want:
                break
            if not follows(v, scene, others):
                continue
            answer = exact_value(v, scene)
            if answer is not None and not (relation == "ratio" and answer.value == "1"):
                kept.append((v, answer))
    out: list[tuple[Value, Answer]] = []
    while len(out) < want and any(found.values()):
        for relation in ("length", "angle", "ratio"):
            if found.get(relation) and len(out) < want:
                out.append(found[relation].pop(0))
    return out


def _given_values(scene: Scene, kind: str) -> list[Answer]:
    return [
        Answer(kind, st.args[-1]) for st in scene.program.statements if st.kind == "given" and st.name == kind
    ]


def make_qa(
    scene: Scene,
    claims: Sequence[Claim],
    negatives: Sequence[Scene | None] = (),
    rng: np.random.Generator | None = None,
    config: QAConfig = QAConfig(),
) -> list[QAItem]:
    """The Q&A of one positive figure: perception questions (with the indices of the image
    ``negatives`` that flip each answer; ``None`` stands for a negative that could not be
    realised) and reasoning questions stating ``claims``. Deterministic given ``rng``'s state
    (default: seed 0). Answers are exact and checked on ``scene``; distractors are wrong by the
    verifier's margins (:mod:`geoforge.qa.choices`)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    items: list[QAItem] = []
    for a in _perception(scene, claims, negatives, rng, config.perception):
        relation = RELATIONS[a.relation]
        if a.answer.kind == "angle":
            others = [o for o in _given_values(scene, "angle") if o != a.answer]
            readings = value_readings(a.answer, others)
        else:
            readings = relation.distractors(scene, a.subject, a.answer)
        wrong = pick(a.answer, readings)
        fmt, order = arrange(wrong, rng, config.choice)
        items.append(
            QAItem(
                f"q{len(items)}",
                "perception",
                a.relation,
                a.subject,
                relation.question(a.subject),
                a.answer,
                fmt,
                tuple(wrong) if fmt == "choice" else (),
                order,
                flips=a.flips,
            )
        )
    asked = _reasoning(scene, claims, rng, config.reasoning)
    for value, answer in asked:
        others = [o for o in _given_values(scene, value.relation) if value.relation != "ratio"]
        others += [b for v, b in asked if v.relation == value.relation and b != answer]
        wrong = pick(answer, value_readings(answer, [o for o in others if o != answer]))
        fmt, order = arrange(wrong, rng, config.choice)
        items.append(
            QAItem(
                f"q{len(items)}",
                "reasoning",
                value.relation,
                value.points,
                setup(claims, value),
                answer,
                fmt,
                tuple(wrong) if fmt == "choice" else (),
                order,
                chain(scene, claims, value.points),
            )
        )
    return items


def negative_scenes(meta: dict[str, object], positive: Scene) -> list[Scene | None]:
    """The image negatives of a stored sample, realised from the programs of its ``negatives``
    record as the verifier realised them (``None`` for one that no longer realises)."""
    from geoforge.program import parse_program
    from geoforge.realise import realise

    record = json.loads(str(meta.get("negatives") or "{}"))
    out: list[Scene | None] = []
    for neg in record.get("image", []):
        try:
            program = parse_program(neg["program"])
            out.append(realise(program, seed=positive.seed, max_tries=3, reference=positive.points))
        except GeoforgeError:
            out.append(None)
    return out


def add_qa(sample: Sample, config: QAConfig, seed: int) -> Sample:
    """``sample`` with its Q&A in ``meta["qa"]`` (:func:`geoforge.qa.items.dump_items`),
    asked of its positive figure, with flips on its image negatives. The generator is
    ``SeedSequence([seed, index, 2])``."""
    from geoforge.program import parse_program
    from geoforge.realise import realise

    meta = sample.meta
    scene = sample.scene
    if scene is None:  # a stored sample: realise it again
        scene = realise(parse_program(str(meta["program"])), seed=int(meta["realise_seed"]))  # type: ignore[call-overload]
    claims = [Claim(c[0], tuple(c[1:])) for c in meta["caption"]["claims"]]  # type: ignore[index]
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(meta["index"]), 2]))  # type: ignore[call-overload]
    items = make_qa(scene, claims, negative_scenes(meta, scene), rng, config)
    return dataclasses.replace(sample, meta={**meta, "qa": dump_items(items)}, scene=scene)


def qa_chunk(args: tuple[list[Sample], QAConfig, int]) -> list[Sample]:
    """:func:`add_qa` over a chunk of samples (a picklable job for worker processes)."""
    samples, config, seed = args
    return [add_qa(s, config, seed) for s in samples]


def qa_counts(metas: Iterable[dict[str, object]]) -> dict[str, object]:
    """Totals over a corpus's ``KEY.json`` records: items by type, by relation and by format,
    and how many perception items flip on at least one image negative."""
    by_type: Counter[str] = Counter()
    by_relation: Counter[str] = Counter()
    by_format: Counter[str] = Counter()
    flipped = 0
    for meta in metas:
        for item in load_items(str(meta.get("qa") or '{"items": []}'), str(meta.get("key", ""))):
            by_type[item.type] += 1
            by_relation[f"{item.type}: {item.relation}"] += 1
            by_format[item.format] += 1
            flipped += bool(item.flips)
    return {
        "items": sum(by_type.values()),
        "by_type": dict(sorted(by_type.items())),
        "by_relation": dict(sorted(by_relation.items())),
        "by_format": dict(sorted(by_format.items())),
        "flipped": flipped,
    }
