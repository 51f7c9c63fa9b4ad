"""How much of a model's image→caption hard-negative accuracy needs the image?

Usage: python experiments/blind_check.py --data HELDOUT --checkpoint SPEC [--checkpoint SPEC ...]

For each held-out sample the positive caption and its caption negatives are scored twice: against
the sample's own image (as ``geoforge eval mmclip`` does: the positive must beat every negative
of a kind) and against the image of ANOTHER sample (the next one, cyclically). A model that ranks
the positive caption first even when shown the wrong figure is using a text-only prior (for
example, that a relabelled or edited caption "reads" wrong), not the figure. Prints one JSON list
with, per model and kind, ``own`` and ``other`` accuracy (``own`` equals the evaluation's number),
and the mean cosine between the image features (and the caption features) of two different
held-out samples: near 1.0, the encoder maps every figure (caption) to nearly the same point.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np
import torch
from geoforge_train.data import CorpusIndex, HardNegativeDataset, NegativeUse, Transform, collate
from geoforge_train.evaluate import MAX_NEGATIVES, load


@torch.no_grad()
def check(spec: str, data: str, batch_size: int = 32) -> dict[str, object]:
    device = torch.device("cpu")
    loaded = load(spec, device)
    model = loaded.model
    index = CorpusIndex.build(data)
    use = NegativeUse(("caption", "retrieval"), MAX_NEGATIVES, 0)
    dataset = HardNegativeDataset(
        index,
        loaded.tokenizer,
        Transform.from_cfg(loaded.preprocess),
        use,
    )
    images, texts, negs = [], [], []  # per sample: negatives (features, kinds)
    for lo in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(lo, min(len(dataset), lo + batch_size))])
        images.append(model.encode_image(batch["image"], normalize=True).float())
        texts.append(model.encode_text(batch["text"], normalize=True).float())
        for b in range(len(batch["text"])):
            mask = batch["neg_text_mask"][b]
            feats = None
            if mask.any():
                feats = model.encode_text(batch["neg_text"][b][mask], normalize=True).float()
            negs.append((feats, batch["neg_text_kind"][b]))
    img, txt = torch.cat(images), torch.cat(texts)
    other = torch.roll(img, shifts=-1, dims=0)
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: {"own": [], "other": []})
    for i, (feats, kinds) in enumerate(negs):
        if feats is None:
            continue
        for which, image in (("own", img[i]), ("other", other[i])):
            pos = float(image @ txt[i])
            by_kind: dict[str, list[float]] = defaultdict(list)
            for kind, s in zip(kinds, (feats @ image).tolist()):
                by_kind[kind].append(s)
            for kind, values in by_kind.items():
                hits[kind][which].append(pos > max(values))
    kinds = {
        k: {w: float(np.mean(v[w])) for w in ("own", "other")} | {"samples": len(v["own"])}
        for k, v in sorted(hits.items())
    }
    overall = {w: float(np.mean([k[w] for k in kinds.values()])) for w in ("own", "other")}
    return {
        "model": spec,
        "samples": len(dataset),
        "kinds": kinds,
        "overall": overall,
        "image_cosine": _mean_off_diagonal(img),
        "text_cosine": _mean_off_diagonal(txt),
    }


def _mean_off_diagonal(x: torch.Tensor) -> float:
    """Mean cosine between the features of two different held-out samples (1.0: collapsed)."""
    sims = x @ x.T
    n = len(sims)
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--checkpoint", action="append", required=True)
    args = parser.parse_args()
    print(json.dumps([check(spec, args.data) for spec in args.checkpoint], indent=1))


if __name__ == "__main__":
    main()
