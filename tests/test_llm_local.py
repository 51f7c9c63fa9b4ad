"""The local backend (``--llm-backend transformers``): a tiny randomly initialised Llama, with a
tokenizer built in-process, runs end to end, and its garbage is rejected with reasons."""

from __future__ import annotations

import os

import geoforge_llm.client
import numpy as np
import pytest

import geoforge.negatives
from geoforge.negatives import NegativeConfig, make_negatives
from geoforge.plugins import PluginHost, PluginSpec
from geoforge.render import render
from geoforge.testing import make_positive

#: Words the tiny model can say: enough DSL that its garbage may look like a program.
WORDS = "A B C D = ; , free foot midpoint lconst s_angle draw segment polygon 3 4 90 the is triangle ```"

#: The reasons a reply that is not a usable edit may get, from reading it or from the verifier.
GARBAGE = {
    "no program in the reply",
    "malformed program",
    "unknown construction",
    "same program as the positive",
    "no caption in the reply",
    "caption text not readable",
}


def tiny_model(path: str) -> None:
    """Save a 1-layer Llama (hidden size 16, random weights, seed 0) and a word-level
    tokenizer with a chat template, both built here, to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *dict.fromkeys(WORDS.split())])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.mark.slow
def test_a_tiny_local_model_runs_end_to_end_and_its_garbage_is_rejected(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    for name in [n for n in os.environ if n.startswith("GEOFORGE_LLM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(geoforge.negatives, "_HOSTS", {})
    monkeypatch.setattr(geoforge_llm.client, "_CLIENTS", {})
    tiny_model(str(tmp_path / "model"))
    settings = {"MODEL": tmp_path / "model", "BACKEND": "transformers", "MAX_TOKENS": 24, "PER_POSITIVE": 3}
    for name, value in {**settings, "CACHE": tmp_path / "cache", "CONCURRENCY": 4}.items():
        monkeypatch.setenv(f"GEOFORGE_LLM_{name}", str(value))
    positive = make_positive(
        "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
        "draw polygon A B C",
        ["right A B C", "altitude A D B C"],
    )
    host = PluginHost(PluginSpec(modules=("geoforge_llm.plugin",), entry_points=False, env=False))
    found = make_negatives(
        positive, render(positive.scene), host, NegativeConfig(image=5, caption=5), np.random.default_rng(0)
    )
    assert not host.failures, host.messages
    assert not found.image and not found.caption
    assert sum(found.rejections.values()) == 6  # 3 replies of each kind, each with a reason
    assert {plugin for plugin, _ in found.rejections} == {"llm_rewrite", "llm_rewrite_caption"}
    assert {reason for _, reason in found.rejections} <= GARBAGE
    replies = sorted((tmp_path / "cache").glob("*/*.json"))
    assert len(replies) == 6  # greedy decoding, cached like any backend's replies
