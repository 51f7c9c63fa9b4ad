"""The blind control of experiments/mmgeolm_towers.sh: an MMGeoLM's held-out accuracy when each
question is shown the figure of the next sample instead of its own (same questions, same
answers). A model that reads the figure drops towards chance; one that answers from the text
alone does not move.

Usage: ``python experiments/mmgeolm_blind.py MODEL HELDOUT OUT.json``
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from geoforge_train.mmgeolm.data import qa_examples
from geoforge_train.mmgeolm.evaluate import evaluate
from geoforge_train.mmgeolm.model import load, quiet


def main(model: str, heldout: str, out: str) -> None:
    quiet()
    examples = [e for e in qa_examples(Path(heldout), flips=True) if e.tile < 0]
    keys = sorted({e.key for e in examples})
    image = {e.key: e.image for e in examples}
    other = {k: image[keys[(i + 1) % len(keys)]] for i, k in enumerate(keys)}
    swapped = [dataclasses.replace(e, image=other[e.key]) for e in examples]
    result = evaluate(load(model, "cpu"), swapped, "cpu")
    Path(out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
