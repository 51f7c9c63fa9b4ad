"""Exporting an MMCLIP checkpoint for open_clip and Hugging Face ``transformers``.

* :func:`export_open_clip` writes a directory that plain open_clip loads with
  ``open_clip.create_model_and_transforms("local-dir:DIR")``: ``open_clip_config.json`` (the
  model's ``model_cfg`` and geoforge's ``preprocess_cfg``, so open_clip's own eval transform is
  the trainer's: no crop, the checkpoint's mean and std) and ``open_clip_model.safetensors``
  (the weights, which open_clip loads with ``weights_only`` safety).
* :func:`hf_vision` maps an open_clip ViT image tower onto
  ``transformers.CLIPVisionModelWithProjection`` and builds a ``CLIPImageProcessor`` with
  geoforge's normalisation and no centre crop; :func:`export_hf` saves both. MMGeoLM's vision
  tower is this model (its ``vision_model``).

The mapping (open_clip ``visual.*`` → HF ``vision_model.*``): ``conv1`` → patch embedding,
``class_embedding``/``positional_embedding`` → embeddings, ``ln_pre`` → ``pre_layrnorm``, each
block's ``ln_1``/``ln_2`` → ``layer_norm1``/``layer_norm2``, ``attn.in_proj`` split in three →
``q_proj``/``k_proj``/``v_proj``, ``attn.out_proj`` → ``out_proj``, ``mlp.c_fc``/``mlp.c_proj`` →
``fc1``/``fc2``, ``ln_post`` → ``post_layernorm``, and ``proj`` (width × embed_dim) transposed →
``visual_projection``. Both pool the class token after the final LayerNorm, so the image
features agree to float32 rounding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from geoforge.errors import UsageError

#: open_clip vision settings the plain CLIP ViT of ``transformers`` cannot express, with the
#: value it needs.
_PLAIN_VIT = {
    "timm_model_name": None,
    "ls_init_value": None,
    "attentional_pool": False,
    "no_ln_pre": False,
    "pos_embed_type": "learnable",
    "pool_type": "tok",
    "act_kwargs": None,
    "norm_kwargs": None,
    "block_type": None,
    "qk_norm": False,
    "scaled_cosine_attn": False,
    "scale_heads": False,
    "scale_attn_inner": False,
    "scale_attn": False,
    "scale_fc": False,
}


class ExportError(UsageError):
    """A checkpoint cannot be exported as asked (exit status 2)."""


def export_open_clip(state: dict[str, Any], out: Path) -> list[Path]:
    """Write ``out/open_clip_config.json`` and ``out/open_clip_model.safetensors`` from a
    checkpoint ``state`` (:func:`geoforge_train.models.read_checkpoint`); returns the paths.
    ``out`` must exist. Raises ExportError if the checkpoint lacks its ``model_cfg`` or
    ``preprocess_cfg`` (made before checkpoints carried them)."""
    from safetensors.torch import save_file

    model_cfg, preprocess = _configs(state)
    config = out / "open_clip_config.json"
    config.write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=2) + "\n", encoding="utf-8"
    )
    weights = out / "open_clip_model.safetensors"
    tensors = {k: v.detach().contiguous() for k, v in state["model"].items()}
    save_file(tensors, str(weights), metadata={"format": "pt", "model_name": str(state.get("model_name"))})
    return [config, weights]


def hf_vision(state: dict[str, Any]):  # type: ignore[no-untyped-def]
    """``(CLIPVisionModelWithProjection, CLIPImageProcessor)`` for the image tower of a
    checkpoint ``state``: weights mapped as the module docstring says, in eval mode; the
    processor resizes to the model's square size (bicubic, no centre crop) and normalises
    with the checkpoint's ``mean``/``std``. For square figures (every geoforge corpus) it
    equals the trainer's preprocessing; a non-square image is stretched, where the trainer pads
    it with white. Raises ExportError for an image tower that is not a plain ViT (timm or
    ResNet towers, layer scale, attentional pooling, average pooling, ...)."""
    from open_clip.model import CLIPVisionCfg
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    model_cfg, preprocess = _configs(state)
    raw = dict(model_cfg["vision_cfg"])
    if isinstance(raw.get("layers"), (list, tuple)):
        raise ExportError(f"{state.get('model_name')}: a ResNet image tower has no CLIPVisionModel form")
    cfg = CLIPVisionCfg(**raw)
    bad = [f"{k}={getattr(cfg, k)!r}" for k, want in _PLAIN_VIT.items() if getattr(cfg, k) != want]
    if bad:
        raise ExportError(
            f"{state.get('model_name')}: image tower settings with no CLIPVisionModel form: {', '.join(bad)}"
        )
    size = cfg.image_size if isinstance(cfg.image_size, int) else cfg.image_size[0]
    config = CLIPVisionConfig(
        hidden_size=cfg.width,
        intermediate_size=int(cfg.width * cfg.mlp_ratio),
        projection_dim=int(model_cfg["embed_dim"]),
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.width // cfg.head_width,
        image_size=size,
        patch_size=cfg.patch_size,
        hidden_act="quick_gelu" if model_cfg.get("quick_gelu") else "gelu",
        layer_norm_eps=1e-5,
    )
    model = CLIPVisionModelWithProjection(config)
    result = model.load_state_dict(_hf_state(state["model"], cfg.layers), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]  # a buffer
    if missing or result.unexpected_keys:
        raise ExportError(f"weights the mapping misses: {(missing + result.unexpected_keys)[:3]}")
    model.eval()
    processor = CLIPImageProcessor(
        do_resize=True,
        size={"height": size, "width": size},
        resample=3,  # PIL bicubic, as the trainer
        do_center_crop=False,
        crop_size={"height": size, "width": size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(preprocess["mean"]),
        image_std=list(preprocess["std"]),
        do_convert_rgb=True,
    )
    return model, processor


def export_hf(state: dict[str, Any], out: Path) -> list[Path]:
    """Save :func:`hf_vision`'s model (``config.json``, ``model.safetensors``) and processor
    (``preprocessor_config.json``) to ``out``; returns the files written."""
    model, processor = hf_vision(state)
    before = set(out.iterdir())
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return sorted(set(out.iterdir()) - before)


def _configs(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    model_cfg, preprocess = state.get("model_cfg"), state.get("preprocess_cfg")
    if not model_cfg or not preprocess:
        raise ExportError(
            "the checkpoint carries no model_cfg/preprocess_cfg (made by an older geoforge): train it again"
        )
    return model_cfg, preprocess


def _hf_state(sd: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """The ``CLIPVisionModelWithProjection`` state dict of open_clip weights ``sd``."""
    v, h = "visual.", "vision_model."
    out = {
        f"{h}embeddings.class_embedding": sd[f"{v}class_embedding"],
        f"{h}embeddings.patch_embedding.weight": sd[f"{v}conv1.weight"],
        f"{h}embeddings.position_embedding.weight": sd[f"{v}positional_embedding"],
        "visual_projection.weight": sd[f"{v}proj"].t(),
    }
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"{h}{theirs}.{p}"] = sd[f"{v}{ours}.{p}"]
    for i in range(layers):
        block, layer = f"{v}transformer.resblocks.{i}.", f"{h}encoder.layers.{i}."
        for p in ("weight", "bias"):
            q, k, val = sd[f"{block}attn.in_proj_{p}"].chunk(3)
            out[f"{layer}self_attn.q_proj.{p}"] = q
            out[f"{layer}self_attn.k_proj.{p}"] = k
            out[f"{layer}self_attn.v_proj.{p}"] = val
            for ours, theirs in (
                ("attn.out_proj", "self_attn.out_proj"),
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ):
                out[f"{layer}{theirs}.{p}"] = sd[f"{block}{ours}.{p}"]
    return {k: t.detach().contiguous() for k, t in out.items()}
