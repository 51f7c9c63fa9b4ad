"""Tiny causal language models built in-process, for tests, smoke runs and CPU experiments.

:func:`tiny_llm` writes a directory that ``--llm`` takes like any Hugging Face causal-LM
directory: a random-init ``LlamaForCausalLM`` or ``Qwen2ForCausalLM`` and a byte-level BPE
tokenizer trained on given texts with the ``tokenizers`` library. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: Architectures :func:`tiny_llm` builds.
ARCHS = ("qwen2", "llama")


def tiny_tokenizer(texts: Iterable[str], vocab: int = 512):  # type: ignore[no-untyped-def]
    """A ``PreTrainedTokenizerFast`` with a byte-level BPE of at most ``vocab`` tokens trained
    on ``texts``, with ``<s>``, ``</s>`` and ``<pad>`` (every byte is in the alphabet, so any
    text tokenizes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_llm(
    out: str | Path,
    texts: Iterable[str],
    arch: str = "qwen2",
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    vocab: int = 512,
    seed: int = 0,
) -> Path:
    """Write a random-init causal LM of ``arch`` (:data:`ARCHS`) with ``hidden`` width,
    ``layers`` blocks and ``heads`` attention heads (two key-value heads), and a tokenizer of
    at most ``vocab`` tokens trained on ``texts``, to ``out``; returns ``out``. Deterministic
    given ``seed``. Raises ValueError for an unknown ``arch``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: expected {' or '.join(ARCHS)}")
    tokenizer = tiny_tokenizer(texts, vocab)
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": arch == "qwen2",
    }
    torch.manual_seed(seed)
    model = (
        Qwen2ForCausalLM(Qwen2Config(**common))
        if arch == "qwen2"
        else LlamaForCausalLM(LlamaConfig(**common))
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
