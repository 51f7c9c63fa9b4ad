"""MMGeoLM examples from geoforge corpora, and their batches.

An :class:`Example` is one image, one question and the reference answer. Stage ``align``
reads a corpus's captions (``KEY.txt``, asked with :data:`~geoforge_train.mmgeolm.model.DESCRIBE`);
stage ``sft`` and evaluation read its Q&A (``KEY.json``'s ``qa``, made by ``geoforge
generate --qa``). With ``flips`` a perception question is also asked of each image negative
that flips its answer (the tile of ``KEY.negatives.png``), with that negative's answer.

:class:`Collate` turns examples into a batch: pixel values, prompt and answer tokens with the
image tokens expanded, labels that score only the answer (−100 elsewhere), right padding.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geoforge.errors import GeoforgeError
from geoforge_train.mmgeolm.model import DESCRIBE, MMGeoLM, check_image_tokens, image_tokens, pixels


class DataError(GeoforgeError):
    """A corpus or benchmark that cannot give examples (no Q&A, no answers, a bad line);
    exit status 2."""

    exit_code = 2


@dataclass
class Example:
    """One question about one image: ``image`` (PNG bytes or a PIL image), ``question`` (the
    full prompt text, options included), ``response`` (the reference answer, ``\\boxed{…}``
    for geoforge Q&A) and what evaluation reports by: ``key`` and ``item`` (sample and item
    ids), ``type``, ``relation``, ``format``, ``kind`` (the answer kind), ``answer`` (the
    answer as printed, or the option letter), ``options`` (printed options of a choice
    question) and ``tile`` (−1 for the positive figure, else the image negative's tile)."""

    image: Any
    question: str
    response: str
    key: str = ""
    item: str = ""
    type: str = ""
    relation: str = ""
    format: str = "free"
    kind: str = ""
    answer: str = ""
    options: tuple[str, ...] = ()
    tile: int = -1
    extra: dict[str, Any] = field(default_factory=dict)

    def pil(self):  # type: ignore[no-untyped-def]
        """The image as a PIL image."""
        from PIL import Image

        return Image.open(io.BytesIO(self.image)) if isinstance(self.image, bytes) else self.image


def _records(corpus: Path) -> Iterator[Any]:
    from geoforge.corpus import CorpusError, read_corpus

    try:
        yield from read_corpus(corpus)
    except CorpusError as e:
        raise DataError(str(e)) from None


def caption_examples(corpus: Path, limit: int | None = None) -> list[Example]:
    """Stage-1 examples: each positive figure with its caption as the answer."""
    out = []
    for record in _records(corpus):
        text = record.files["txt"].decode()
        out.append(Example(record.files["png"], DESCRIBE, text, key=record.key, type="caption"))
        if limit is not None and len(out) >= limit:
            break
    return out


def qa_examples(corpus: Path, flips: bool = False, limit: int | None = None) -> list[Example]:
    """Q&A examples of a corpus made with ``--qa`` (the first ``limit`` samples), each
    perception item also on its flipping image negatives when ``flips``. Raises DataError
    naming the corpus if it has no Q&A or no answers."""
    from geoforge.qa import QAError, load_items

    out: list[Example] = []
    samples = 0
    for record in _records(corpus):
        if limit is not None and samples >= limit:
            break
        samples += 1
        meta = record.meta
        if "qa" not in meta:
            raise DataError(f"{corpus}: sample {record.key} has no Q&A: generate the corpus with --qa")
        try:
            items = load_items(str(meta["qa"]), f"{corpus}/{record.key}")
        except QAError as e:
            raise DataError(str(e)) from None
        tiles = record.image_negatives() if flips and any(i.flips for i in items) else []
        for item in items:
            common = {
                "key": record.key,
                "item": item.id,
                "type": item.type,
                "relation": item.relation,
                "format": item.format,
                "kind": item.answer.kind,
                "options": tuple(a.display() for a in item.options()),
            }
            answer = item.correct or item.answer.display()
            out.append(Example(record.files["png"], item.prompt(), item.response(), answer=answer, **common))
            for flip in item.flips if flips else ():
                shown = item.letter_of(flip.answer) if item.format == "choice" else flip.answer.display()
                if shown and flip.tile < len(tiles):
                    response = "\\boxed{" + shown + "}"
                    out.append(
                        Example(
                            tiles[flip.tile], item.prompt(), response, answer=shown, tile=flip.tile, **common
                        )
                    )
    if not out:
        raise DataError(f"{corpus}: no Q&A items with answers in {samples} samples")
    return out


@dataclass
class Collate:
    """Batches of examples for ``bundle``: a dict of ``pixel_values`` (B, 3, S, S) float32,
    ``input_ids`` and ``attention_mask`` (B, L) int64, and with ``train`` ``labels`` (B, L)
    int64, −100 except on answer tokens. Prompts are never truncated (ImageTokenError past
    ``max_length``); an answer is cut to fit. Without ``train`` the prompts are padded on the
    left, ready for ``generate``."""

    bundle: MMGeoLM
    max_length: int = 512
    train: bool = True

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        tok = self.bundle.tokenizer
        rows, labels = [], []
        for ex in examples:
            prompt = image_tokens(self.bundle, ex.question, self.max_length)
            answer = []
            if self.train:
                answer = tok(" " + ex.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                answer = answer[: self.max_length - len(prompt)]
            rows.append(prompt + answer)
            labels.append([-100] * len(prompt) + answer)
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id

        def padded(row: list[int], value: int) -> list[int]:
            fill = [value] * (width - len(row))
            return row + fill if self.train else fill + row

        ids = torch.tensor([padded(r, pad) for r in rows], dtype=torch.long)
        mask = torch.tensor([padded([1] * len(r), 0) for r in rows], dtype=torch.long)
        check_image_tokens(self.bundle, ids, len(examples))
        batch = {
            "pixel_values": pixels(self.bundle, [ex.pil() for ex in examples]),
            "input_ids": ids,
            "attention_mask": mask,
        }
        if self.train:
            batch["labels"] = torch.tensor([padded(lab, -100) for lab in labels], dtype=torch.long)
        return batch
