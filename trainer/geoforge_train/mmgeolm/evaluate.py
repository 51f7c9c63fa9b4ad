"""Scoring MMGeoLM on geometry questions: answer extraction, accuracies, benchmark adapters.

The answer is read from a reply by :func:`extract`: the last ``\\boxed{…}``, else a lone
option letter, else the last number. It is right (:func:`is_right`) when it is the option
letter, the same text (yes/no, point names, segment lists; case and spaces ignored), or a
number within :data:`REL_TOL` of the answer (``3√2``, ``75/2°`` and ``60`` read as numbers).

:func:`evaluate` reports accuracy overall, per question type, per relation and per format,
and the *paired* accuracy MMGeoLM targets: for each perception question whose answer an image
negative flips, the model must answer right on the positive figure **and** on every flipping
negative (a model that ignores the figure cannot).

Adapters read user-supplied benchmarks (:func:`read_benchmark`): GeoQA-style files (a JSON
array or JSON lines of ``{question|subject, choices, label|answer, image}``) and MathVista's
format (``testmini``: entries with ``question``, ``image``, ``choices``, ``answer``,
``question_type``, ``metadata``), of which the geometry subset is kept (task ``geometry problem
solving`` or skill ``geometry reasoning``).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from geoforge_train.mmgeolm.data import Collate, DataError, Example
from geoforge_train.mmgeolm.model import MMGeoLM

LETTERS = "ABCD"
#: A numeric answer is right within this relative difference.
REL_TOL = 1e-2
FORMATS = ("geoforge", "geoqa", "mathvista")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:√\d+)?(?:/\d+)?|-?√\d+(?:/\d+)?")


def extract(reply: str, options: tuple[str, ...] = ()) -> str:
    """The answer in a model's ``reply`` (module docstring); ``""`` if none."""
    boxed = _BOXED.findall(reply)
    if boxed:
        return boxed[-1].strip()
    if options:
        letters = re.findall(r"\b([A-D])\b", reply)
        if letters:
            return letters[-1]
    numbers = _NUMBER.findall(reply)
    return numbers[-1] if numbers else reply.strip()


def number(text: str) -> float | None:
    """The value of a printed number (``3``, ``2.5``, ``3√2``, ``√3/2``, ``75/2°``), or ``None``."""
    m = re.fullmatch(
        r"(-?)(\d+(?:\.\d+)?)?(?:√(\d+))?(?:/(\d+))?", text.strip().removesuffix("°").replace(" ", "")
    )
    if not m or not (m.group(2) or m.group(3)):
        return None
    sign, coef, root, den = m.groups()
    v = float(coef or 1) * math.sqrt(float(root or 1)) / float(den or 1)
    return -v if sign else v


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def is_right(predicted: str, example: Example) -> bool:
    """True if ``predicted`` (from :func:`extract`) answers ``example`` (module docstring)."""
    want = example.answer
    if example.options and len(want) == 1 and want in LETTERS:
        if predicted in LETTERS:
            return predicted == want
        return _norm(predicted) == _norm(example.options[LETTERS.index(want)])
    if _norm(predicted) == _norm(want):
        return True
    a, b = number(predicted), number(want)
    return a is not None and b is not None and abs(a - b) <= REL_TOL * max(abs(b), 1e-9)


@torch.no_grad()
def answer(
    bundle: MMGeoLM,
    examples: list[Example],
    device: torch.device | str,
    max_new_tokens: int = 32,
    max_length: int = 512,
) -> list[str]:
    """Greedy replies of ``bundle`` to ``examples`` (one batch), decoded without special tokens."""
    batch = Collate(bundle, max_length, train=False)(examples)
    batch = {k: v.to(device) for k, v in batch.items()}
    tok = bundle.tokenizer
    out = bundle.model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return tok.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


def _share(hits: list[bool]) -> dict[str, float | int | None]:
    """``{accuracy, n}`` of ``hits``; the accuracy of no question is ``None`` (JSON ``null``),
    never nan: ``--json`` output stays JSON, and a table shows ``-``."""
    return {"accuracy": round(sum(hits) / len(hits), 4) if hits else None, "n": len(hits)}


def score(examples: list[Example], replies: list[str]) -> dict[str, Any]:
    """Accuracies of ``replies`` to ``examples`` (module docstring): ``overall``, ``by_type``,
    ``by_relation`` (``type: relation``), ``by_format``, the positive-figure and negative-figure
    accuracy of flipped perception questions and their ``paired`` accuracy, each as
    ``{accuracy, n}`` (``accuracy`` ``None`` where ``n`` is 0: a benchmark without flipped
    questions)."""
    hits = [is_right(extract(r, e.options), e) for e, r in zip(examples, replies)]
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    pairs: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for e, h in zip(examples, hits):
        if e.tile < 0:
            groups["by_type"][e.type].append(h)
            groups["by_relation"][f"{e.type}: {e.relation}"].append(h)
            groups["by_format"][e.format].append(h)
        pairs[(e.key, e.item)].append(h)
    flipped = [(k, v) for k, v in pairs.items() if len(v) > 1]
    positives = {(e.key, e.item): h for e, h in zip(examples, hits) if e.tile < 0}
    return {
        "overall": _share([h for e, h in zip(examples, hits) if e.tile < 0]),
        **{name: {k: _share(v) for k, v in sorted(g.items())} for name, g in groups.items()},
        "flipped_positive": _share([positives[k] for k, _ in flipped if k in positives]),
        "flipped_negative": _share([h for e, h in zip(examples, hits) if e.tile >= 0]),
        "paired": _share([all(v) for _, v in flipped]),
    }


def evaluate(
    bundle: MMGeoLM,
    examples: list[Example],
    device: torch.device | str,
    batch_size: int = 16,
    max_length: int = 512,
) -> dict[str, Any]:
    """:func:`score` of ``bundle``'s greedy replies to ``examples``, with the replies of the
    first 5 examples under ``samples``."""
    replies: list[str] = []
    for i in range(0, len(examples), batch_size):
        replies += answer(bundle, examples[i : i + batch_size], device, max_length=max_length)
    result = score(examples, replies)
    result["samples"] = [
        {"question": e.question[-120:], "reply": r, "answer": e.answer} for e, r in zip(examples[:5], replies)
    ]
    return result


# --- benchmark adapters ---------------------------------------------------------------------------


def _entries(path: Path) -> Iterable[tuple[str, Any]]:
    """``(where, entry)`` of a JSON array, a JSON object of entries, or JSON lines (always for a
    ``.jsonl`` file: its one line is one entry, not an object of entries)."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            raise json.JSONDecodeError("JSON lines", text, 0)
        data = json.loads(text)
    except json.JSONDecodeError:
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield f"{path}:{n}", json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{n}: not JSON: {e.msg}") from None
        return
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else None
    if items is None:
        raise DataError(f"{path}: expected a JSON array or object of entries, got {type(data).__name__}")
    for k, entry in items:
        yield f"{path}: entry {k}", entry


def _image(path: Path, where: str, name: object) -> Any:
    from PIL import Image

    if not isinstance(name, str):
        raise DataError(f"{where}: `image` must be a file name, got {name!r}")
    file = path.parent / name
    if not file.is_file():
        raise DataError(f"{where}: image {file} not found")
    with Image.open(file) as im:
        return im.convert("RGB")


def _choice_text(question: str, choices: list[str]) -> str:
    return question + " Choices: " + " ".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _geoqa(path: Path, where: str, e: Any) -> Example:
    if not isinstance(e, dict):
        raise DataError(f"{where}: expected an object, got {type(e).__name__}")
    question = e.get("question", e.get("subject"))
    choices = e.get("choices")
    if not isinstance(question, str) or not isinstance(choices, list) or not 2 <= len(choices) <= 4:
        raise DataError(f"{where}: a GeoQA entry needs `question` (or `subject`) and 2 to 4 `choices`")
    if isinstance(e.get("label"), int) and 0 <= e["label"] < len(choices):
        letter = LETTERS[e["label"]]
    elif isinstance(e.get("answer"), str) and e["answer"] in LETTERS[: len(choices)]:
        letter = e["answer"]
    else:
        raise DataError(f"{where}: a GeoQA entry needs `label` (0-based index) or `answer` (a letter)")
    options = tuple(str(c) for c in choices)
    return Example(
        _image(path, where, e.get("image")),
        _choice_text(question, list(options)),
        "\\boxed{" + letter + "}",
        key=str(e.get("id", where)),
        type="geoqa",
        relation="choice",
        format="choice",
        answer=letter,
        options=options,
    )


def _mathvista(path: Path, where: str, e: Any) -> Example | None:
    need = ("question", "image", "answer", "question_type")
    if not isinstance(e, dict) or any(k not in e for k in need):
        raise DataError(f"{where}: a MathVista entry needs {', '.join(f'`{k}`' for k in need)}")
    meta = e.get("metadata") or {}
    if meta.get("task") != "geometry problem solving" and "geometry reasoning" not in (
        meta.get("skills") or []
    ):
        return None
    choices = e.get("choices") or []
    options = tuple(str(c) for c in choices)
    answer = str(e["answer"])
    if e["question_type"] == "multi_choice":
        if answer not in options:
            raise DataError(f"{where}: `answer` {answer!r} is not one of its `choices`")
        answer = LETTERS[options.index(answer)]
        question = _choice_text(e["question"], list(options))
    else:
        question, options = e["question"], ()
    return Example(
        _image(path, where, e["image"]),
        question,
        "\\boxed{" + answer + "}",
        key=str(e.get("pid", where)),
        type="mathvista",
        relation=str(meta.get("category", "geometry")),
        format="choice" if options else "free",
        answer=answer,
        options=options,
    )


def read_benchmark(path: str | Path, fmt: str) -> list[Example]:
    """Examples of a user-supplied benchmark file of format ``geoqa`` or ``mathvista``
    (module docstring); image paths are relative to the file. Raises DataError naming the file
    and the line or entry that is not in the format, or a file with no geometry question."""
    p = Path(path)
    if fmt not in ("geoqa", "mathvista"):
        raise DataError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if not p.is_file():
        raise DataError(f"{p}: no such benchmark file")
    read = _geoqa if fmt == "geoqa" else _mathvista
    out = [x for where, e in _entries(p) if (x := read(p, where, e)) is not None]
    if not out:
        raise DataError(f"{p}: no {'geometry ' if fmt == 'mathvista' else ''}questions in it")
    return out
