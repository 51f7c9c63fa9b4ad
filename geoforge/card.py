"""The dataset card (``README.md``) of a corpus: what each member and field holds, and how to
load it with WebDataset, Hugging Face ``datasets`` and open_clip.

The tables here are the one description of the corpus layout; ``docs/corpus.md`` carries the
same fields (a test checks that it names every one).
"""

from __future__ import annotations

import json

from geoforge.corpus import NEGATIVES, shard_name

#: The members of a sample, by extension.
MEMBERS = {
    "png": "the figure: a greyscale PNG, `image_size` pixels square",
    "txt": "its caption (UTF-8), the `caption.text` of `KEY.json`",
    "json": "the sample's metadata (fields below)",
    NEGATIVES: (
        "only in a corpus with image negatives: the image negatives side by side, one PNG "
        "`K · image_size` pixels wide and `image_size` high (K: image negatives asked per sample). "
        "Tile `i` (columns `i · image_size` to `(i + 1) · image_size`) is the negative whose "
        "`tile` is `i` in the `negatives` record; tiles past the sample's own count are white. "
        "Every sample has this member whatever number of negatives it got, so every reader "
        "sees one schema"
    ),
}

#: The fields of ``KEY.json``. Every sample has every field, with one type, and no ``null``.
SAMPLE_FIELDS = {
    "key": "the sample's key, its index zero-padded to 8 digits",
    "index": "the sample's index in the corpus (its generator is `SeedSequence([seed, index])`)",
    "family": "the figure family the sampler drew (`triangle`, `quadrilateral`, ...)",
    "features": "the features of the figure (`altitude`, `circumcircle`, ...)",
    "program": "the diagram program (geoforge's DSL, a superset of AlphaGeometry's)",
    "dialect": "the dialect `program` is written in (`alphageometry`; see `geoforge.dialect`)",
    "canonical_hash": "the program's canonical hash (invariant under point renaming)",
    "realise_seed": "the seed that realises `program` into these points",
    "points": "`[{name, x, y}]`: the realised coordinates (float64, rounded to 12 digits)",
    "style": "the caption style of `txt`: `descriptive`, `facts` or `question`",
    "caption": (
        "the caption of `txt`: `{text, style, claims, question, answer}`, `claims` as "
        '`[kind, *args]` lists, `answer` as text ("" when none)'
    ),
    "captions": "the caption in every style, keyed by style, each shaped like `caption`",
    "facts": "the facts the caption states, in AlphaGeometry's vocabulary (`perp a d b c`)",
    "givens": 'the values shown on the figure, `given` statements joined by "; " ("" when none)',
    "draws": "why each rejected figure was rejected, in order, then `accepted`",
    "negatives": (
        "only in a corpus with negatives: a JSON *string* (one Arrow type in every sample) "
        "holding the record below"
    ),
    "qa": (
        "only in a corpus made with `--qa`: a JSON *string* `{items: [...]}`, each item "
        "`{id, type, relation, subject, question, answer_kind, answer, display, format, choices, "
        "correct, distractors, order, chain, flips, prompt, response}`; `prompt` and `response` "
        "(`\\boxed{...}`) are what a model is asked and answers, `flips` the image negatives "
        "(`tile`) on which the answer differs"
    ),
}

#: The fields of the ``negatives`` record (decode ``KEY.json["negatives"]`` with ``json.loads``).
NEGATIVE_FIELDS = {
    "image": (
        "image negatives: `[{tile, plugin, clause, change, program, breaks, violated, pixel_diff, "
        f"how, restored}}]`; `tile` is its tile in `{NEGATIVES}`, `program` the changed diagram "
        "program, `clause` the index of the clause changed, `restored` the number of the "
        "positive's true marks, givens and strokes the engine put back"
    ),
    "caption": "rule caption negatives: `[{plugin, change, text, claims, violated, how}]`",
    "retrieval": "retrieved caption negatives (captions of other samples), shaped like `caption`",
    "rejections": '`{"plugin: reason": count}`: candidates the verifier rejected for this sample',
    "failures": '`{"plugin: stage": count}`: plugin failures while making this sample\'s negatives',
    "breaks": "(in each negative) the claims of the positive it was made to break, `[kind, *args]`",
    "violated": (
        "(in each negative) the claims false by the verifier's margin, `[kind, *args, violation]`, "
        "the violation in units of the margin"
    ),
    "how": "(in each negative) how it is false: `geometry`, `value`, `undrawn circle` or `absent point`",
    "pixel_diff": "(image negatives) the share of pixels that differ from the positive",
}


def shard_pattern(shards: int) -> str:
    """The brace pattern of a corpus's shards, e.g. ``shard-{000000..000003}.tar`` for 4 shards
    (the plain name for one)."""
    if shards <= 1:
        return shard_name(0)
    return "shard-{" + f"{0:06d}..{shards - 1:06d}" + "}.tar"


def _table(fields: dict[str, str], head: str) -> str:
    rows = "\n".join(f"| `{k}` | {v} |" for k, v in fields.items())
    return f"| {head} | what it holds |\n|---|---|\n{rows}"


def dataset_card(
    recipe_json: dict[str, object],
    counts: dict[str, object],
    examples: list[str],
    shards: int = 1,
    image_negatives: int = 0,
) -> str:
    """A Hugging Face dataset card (``README.md``) for a corpus of ``shards`` shards whose
    samples have ``image_negatives`` tiles of image negatives (0: no ``negatives.png``): the
    members and fields, loading snippets for WebDataset, ``datasets`` and open_clip, the
    families, example captions and the recipe."""
    n = int(counts["samples"])  # type: ignore[arg-type]
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10000 else "10K<n<100K" if n < 100000 else "n>100K"
    fam = "\n".join(f"| {k} | {v} |" for k, v in counts["families"].items())  # type: ignore[attr-defined]
    ex = "\n".join(f"- {e}" for e in examples)
    side = int(recipe_json["image_size"])  # type: ignore[call-overload]
    urls = shard_pattern(shards)
    members = {f"KEY.{k}": v for k, v in MEMBERS.items() if k != NEGATIVES or image_negatives}
    has_negatives = "negatives" in counts
    fields = {k: v for k, v in SAMPLE_FIELDS.items() if k != "negatives" or has_negatives}
    negatives = (
        f"\n### The `negatives` record\n\n{_table(NEGATIVE_FIELDS, 'field')}\n" if has_negatives else ""
    )
    tiles = (
        f"""
# the image negatives of a sample: the first n tiles of negatives.png ({side} px each)
import json
for sample in wds.WebDataset(urls, shardshuffle=False).decode("pil"):
    record = json.loads(sample["json"]["negatives"])
    negatives = [sample["{NEGATIVES}"].crop((i * {side}, 0, (i + 1) * {side}, {side}))
                 for i in range(len(record["image"]))]
"""
        if image_negatives
        else ""
    )
    hf_tiles = (
        f"""row["{NEGATIVES}"]  # a PIL image: crop tile i as above, for i < len(record["image"])
"""
        if image_negatives
        else ""
    )
    return f"""---
license: apache-2.0
task_categories:
- image-to-text
- zero-shot-image-classification
tags:
- geometry
- diagrams
- synthetic
- webdataset
size_categories:
- {size}
---

# {recipe_json["name"]}: geometry diagrams with exact captions

Made by geoforge from a recipe (below). Every figure is realised from a diagram program;
every caption claim was checked on the figure before it was written; every hard negative was
verified false. {n} samples in {shards} shard(s).

## Files

WebDataset shards `{urls}`; `sizes.json` gives the samples per shard (open_clip reads it),
`manifest.json` the full provenance (geoforge version, git SHA, resolved recipe and its hash,
seed, plugins, counts, rejections by reason). Every sample has the same members:

{_table(members, "member")}

### `KEY.json`

{_table(fields, "field")}
{negatives}
## Loading

```python
# WebDataset, as open_clip reads it
import webdataset as wds
urls = "{urls}"
ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("png", "txt")
{tiles}
# Hugging Face datasets (every shard, or any one of them)
from datasets import load_dataset
ds = load_dataset("webdataset", data_files={{"train": "shard-*.tar"}}, split="train")
row = ds[0]  # row["png"] (PIL image), row["txt"], row["json"] (dict)
{hf_tiles}```

```sh
# open_clip's trainer
python -m open_clip_train.main --dataset-type webdataset --train-data '{urls}' \\
    --train-num-samples {n} --model ViT-B-16 --pretrained openai
```

## Families

| family | samples |
|---|---|
{fam}

## Example captions

{ex}

## Recipe

```json
{json.dumps(recipe_json, indent=2, sort_keys=True)}
```
"""
