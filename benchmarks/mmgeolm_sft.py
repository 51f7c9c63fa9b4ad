"""Throughput of MMGeoLM's ``sft`` stage on one GPU (prepared for one H200): tokens/s and samples/s.

The run is the real one: ``geoforge generate --qa`` makes a Q&A corpus (``--samples``
figures at 224 px), a random-init tower of ViT-B/16's size (``CLIPVisionModel``: width 768,
12 layers, 16 px patches, 196 image tokens) and a random-init language model of
Qwen2-0.5B's size (``Qwen2ForCausalLM``: width 896, 24 layers, 14 heads, 2 key-value heads,
MLP 4,864, vocabulary 151,936, tied embeddings; 494 M parameters) with a BPE tokenizer built
in-process are assembled into an MMGeoLM (:func:`geoforge_train.mmgeolm.model.assemble`), and
:func:`geoforge_train.mmgeolm.train.train_mmgeolm` runs ``--stage sft`` for ``--steps`` steps
of ``--batch`` examples (bf16 on CUDA, the tower frozen, the LM and projector trained with
AdamW). Nothing is downloaded.

Reported: samples/s over the steps after ``--warmup`` (from the per-step wall times of
``log.jsonl``), tokens/s (samples/s × the mean tokens per example, image tokens included,
padding excluded, counted with the trainer's own collator), the trainer's own
``train_samples_per_second`` (all steps), the peak GPU memory and each phase's seconds. The
JSON goes to stdout and to ``--out``. ``--smoke`` runs everything tiny on the CPU (a 2-layer
tower and LM, 8 figures, 4 steps) to test the script without a GPU::

    python3 benchmarks/mmgeolm_sft.py --out $OUT/mmgeolm.json    # on the GPU machine, < 5 min
    .venv/bin/python benchmarks/mmgeolm_sft.py --smoke          # here, on the CPU

The GPU machine needs the ``[train]`` stack and geoforge's own dependencies; see README.md
beside this file for carrying wheels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "trainer", ROOT / "plugins"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

#: ViT-B/16 and Qwen2-0.5B sizes, and the tiny ones of ``--smoke``.
TOWER = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}
LM = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
}
SMOKE_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
SMOKE_LM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": 1024,
}


def _corpus(out: Path, samples: int, workers: int) -> Path:
    from geoforge.generate import generate_corpus
    from geoforge.qa import QAConfig
    from geoforge.sampler import load_recipe
    from geoforge.sampler.recipe import recipe_from_dict

    recipe = load_recipe(ROOT / "corpora" / "smoke.toml").to_json()
    recipe.update(image_size=224, shard_size=max(samples, 1))
    data = {
        "corpus": {k: recipe[k] for k in ("name", "samples", "seed", "image_size", "shard_size")},
        "families": recipe["families"],
        "difficulty": {k: recipe[k] for k in ("min_clauses", "max_clauses", "givens")},
    }
    generate_corpus(recipe_from_dict(data), out, n=samples, seed=0, workers=workers, qa=QAConfig())
    return out


def _init(root: Path, corpus: Path, tower_cfg: dict, lm_cfg: dict) -> tuple[Path, int]:
    """An MMGeoLM of random weights of the given sizes, saved as an ``align`` output."""
    import torch
    from geoforge_train.mmgeolm import model as mm
    from geoforge_train.mmgeolm.tiny import tiny_tokenizer
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    from geoforge.corpus import read_corpus

    texts = []
    for record in read_corpus(corpus):
        texts.append(record.files["txt"].decode())
        texts += [i["prompt"] + " " + i["response"] for i in json.loads(record.meta["qa"])["items"]]
    tokenizer = tiny_tokenizer(texts, vocab=min(2000, lm_cfg["vocab_size"] - 8))
    torch.manual_seed(0)
    tower = CLIPVisionModel(CLIPVisionConfig(image_size=224, patch_size=16, **tower_cfg))
    processor = CLIPImageProcessor(
        size={"height": 224, "width": 224}, crop_size={"height": 224, "width": 224}, do_center_crop=False
    )
    config = Qwen2Config(
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **lm_cfg,
    )
    bundle = mm.assemble(tower, processor, Qwen2ForCausalLM(config), tokenizer, meta={"benchmark": True})
    params = sum(p.numel() for p in bundle.model.parameters())
    return mm.save(bundle, root / "init"), params


def _tokens_per_example(init: Path, corpus: Path) -> float:
    from geoforge_train.mmgeolm import model as mm
    from geoforge_train.mmgeolm.data import Collate, qa_examples

    bundle = mm.load(init)
    examples = qa_examples(corpus)
    collate = Collate(bundle, 1024)
    counts = [int(collate([e])["attention_mask"].sum()) for e in examples]
    return sum(counts) / len(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256, help="Figures in the Q&A corpus.")
    parser.add_argument("--batch", type=int, default=16, help="Examples per step.")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="Steps left out of samples/s.")
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="Corpus workers.")
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes on the CPU.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.batch, args.steps, args.warmup = 8, 4, 4, 1
    import torch
    from geoforge_train.mmgeolm.model import quiet
    from geoforge_train.mmgeolm.train import MMGeoLMConfig, train_mmgeolm

    quiet()
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        corpus = _corpus(root / "qa", args.samples, args.workers)
        seconds["corpus"] = time.perf_counter() - start
        start = time.perf_counter()
        init, params = _init(
            root, corpus, SMOKE_TOWER if args.smoke else TOWER, SMOKE_LM if args.smoke else LM
        )
        seconds["model"] = time.perf_counter() - start
        tokens = _tokens_per_example(init, corpus)
        start = time.perf_counter()
        config = MMGeoLMConfig(
            stage="sft",
            data=str(corpus),
            out=str(root / "sft"),
            init=str(init),
            max_steps=args.steps,
            batch_size=args.batch,
            device=device,
            max_length=1024,
            log_every=10,
        )
        summary = train_mmgeolm(config)
        seconds["train"] = time.perf_counter() - start
        rows = [json.loads(r) for r in (root / "sft" / "log.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["step"] > args.warmup]
    span = (
        timed[-1]["seconds"] - rows[args.warmup - 1]["seconds"]
        if timed and args.warmup
        else rows[-1]["seconds"]
    )
    samples_per_s = len(timed) * args.batch / span if span > 0 else float("nan")
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "smoke": args.smoke,
        "parameters": params,
        "batch": args.batch,
        "steps": summary["steps"],
        "timed_steps": len(timed),
        "tokens_per_example": round(tokens, 1),
        "samples_per_s": round(samples_per_s, 2),
        "tokens_per_s": round(samples_per_s * tokens, 1),
        "trainer_samples_per_s": summary["samples_per_s"],
        "final_loss": summary["final_loss"],
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    text = json.dumps(report, indent=1)
    sys.stdout.write(text + "\n")
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
