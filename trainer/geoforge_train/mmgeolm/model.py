"""The MMGeoLM model: ``transformers.LlavaForConditionalGeneration`` on the MMCLIP tower.

MMGeoLM (Sun et al. 2025, §3) puts the MMCLIP vision encoder into a LLaVA-style model: the
tower's patch features (the penultimate layer by default, CLS dropped, as LLaVA-1.5), a 2-layer
MLP projector with GELU, and any causal LM. The tower comes from an MMCLIP run through the
open_clip → ``CLIPVisionModel`` mapping of :func:`geoforge_train.export.hf_vision` (the same
conversion as ``geoforge export mmclip RUN --to hf``), or from such an exported directory.

A prompt is ``USER: <image>\\n{question}\\nASSISTANT:`` and the answer follows with a space
and ends with the tokenizer's end-of-sequence token. The single ``<image>`` token of the text
is expanded to one token per image feature (:func:`image_tokens`); every mismatch between image
tokens and features (a missing ``<image>``, CLS kept or dropped, a truncated prompt) is an
:class:`ImageTokenError` naming both counts, never a silent shift.

A saved model (:func:`save`, :func:`load`) is a directory that ``transformers`` loads by
itself: the Llava weights and config, the tokenizer, the ``CLIPImageProcessor`` and
``mmgeolm.json`` (how it was made).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geoforge.errors import GeoforgeError, UsageError

#: The image placeholder of a prompt (one token, expanded to the tower's feature count).
IMAGE = "<image>"
PROMPT = "USER: " + IMAGE + "\n{question}\nASSISTANT:"
#: The instruction of stage-1 (alignment) examples, answered with the figure's caption.
DESCRIBE = "Describe the figure."


class ImageTokenError(GeoforgeError):
    """Image tokens and image features do not match (a missing ``<image>``, CLS handling, a
    prompt truncated into its image tokens)."""


class ModelError(GeoforgeError):
    """A vision checkpoint, language model or MMGeoLM directory that cannot be loaded as given;
    exit status 2."""

    exit_code = 2


@dataclass
class MMGeoLM:
    """A LLaVA model with what it needs to read inputs: ``model``
    (``LlavaForConditionalGeneration``), ``tokenizer``, ``image_processor``
    (``CLIPImageProcessor``) and ``meta`` (how it was made: tower, LLM, stage)."""

    model: Any
    tokenizer: Any
    image_processor: Any
    meta: dict[str, Any]

    @property
    def image_seq_length(self) -> int:
        """Image tokens per image: one per patch feature the projector receives."""
        return int(self.model.config.image_seq_length)


def quiet() -> None:
    """Silence ``transformers``' progress bars and warnings (the CLI prints its own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Within it, ``transformers`` draws no progress bar ("Loading weights", "Writing model
    shards"): loading and saving here say nothing of their own. The setting is put back after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def tower_features(vision_config: Any, select: str) -> int:
    """Features per image of a CLIP ViT: (image size / patch size)², plus the CLS feature
    when ``select`` is ``full`` (LLaVA's ``default`` drops it)."""
    patches = (vision_config.image_size // vision_config.patch_size) ** 2
    return patches + (1 if select == "full" else 0)


def load_tower(spec: str | Path) -> tuple[Any, Any]:
    """``(CLIPVisionModel, CLIPImageProcessor)`` from an MMCLIP run directory or ``.pt``
    checkpoint (converted by :func:`geoforge_train.export.hf_vision`) or from a directory that
    ``geoforge export mmclip --to hf`` wrote. Raises ModelError naming ``spec`` when it is
    missing or its weights do not match its config."""
    from transformers import CLIPImageProcessor, CLIPVisionModel

    path = Path(spec)
    if not path.exists():
        raise ModelError(f"--tower {spec}: no such run, checkpoint or directory")
    if (path / "config.json").is_file():
        try:
            with no_progress_bars():
                tower = CLIPVisionModel.from_pretrained(path, local_files_only=True)
                processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(
                f"--tower {spec}: the vision checkpoint does not match its config: {first}"
            ) from None
        return tower, processor
    from geoforge_train.export import hf_vision
    from geoforge_train.models import read_checkpoint

    with_projection, processor = hf_vision(read_checkpoint(path))
    tower = CLIPVisionModel(with_projection.config)
    tower.load_state_dict(_same_keys(_vision_weights(with_projection), tower.state_dict()))
    return tower, processor


def _vision_weights(model: Any) -> dict[str, torch.Tensor]:
    """The ``CLIPVisionTransformer`` weights of a CLIP vision model, without a key prefix."""
    inner = getattr(model, "vision_model", None)
    return (inner if inner is not None else model).state_dict()  # type: ignore[no-any-return]


def _same_keys(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``source`` (a ``CLIPVisionTransformer``'s weights) under the key names of ``target``, which
    may carry a ``vision_model.`` prefix or not (transformers versions differ)."""
    prefix = "vision_model." if next(iter(target)).startswith("vision_model.") else ""
    return {prefix + k: v for k, v in source.items()}


def load_llm(path: str | Path) -> tuple[Any, Any]:
    """``(AutoModelForCausalLM, AutoTokenizer)`` from a local causal-LM directory. Raises
    ModelError naming ``path`` if it is missing, has no or a malformed ``config.json``, no
    weights, a model that is not a causal LM, or no tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    where = Path(path)
    if not where.is_dir():
        raise ModelError(f"--llm {path}: no such directory")
    if not (where / "config.json").is_file():
        raise ModelError(f"--llm {path}: not a causal-LM directory (no config.json)")
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"--llm {path}: malformed config.json: {str(e).splitlines()[0]}") from None
    try:
        with no_progress_bars():
            model = AutoModelForCausalLM.from_pretrained(where, config=config, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"--llm {path}: cannot load a causal LM: {str(e).splitlines()[0]}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ModelError(f"--llm {path}: cannot load its tokenizer: {str(e).splitlines()[0]}") from None
    if not isinstance(tokenizer.eos_token, str):
        raise ModelError(f"--llm {path}: its tokenizer has no end-of-sequence token")
    return model, tokenizer


def assemble(
    tower: Any,
    image_processor: Any,
    llm: Any,
    tokenizer: Any,
    *,
    feature_layer: int = -2,
    select: str = "default",
    meta: dict[str, Any] | None = None,
    seed: int = 0,
) -> MMGeoLM:
    """A new MMGeoLM: the tower's and the LLM's weights in a ``LlavaForConditionalGeneration``
    with a fresh 2-layer GELU projector (seeded), ``<image>`` added to the tokenizer and the LM's
    embeddings grown to it if they are smaller. ``feature_layer`` is the tower's hidden state
    the projector reads (``-2``: the penultimate layer); ``select`` is ``default`` (drop CLS)
    or ``full``. Raises UsageError for another ``select`` or a layer the tower does not have."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    if select not in ("default", "full"):
        raise UsageError(f"--select {select}: expected default (drop CLS) or full")
    depth = tower.config.num_hidden_layers
    if not -depth - 1 <= feature_layer <= depth:
        raise UsageError(f"--feature-layer {feature_layer}: the tower has {depth} layers")
    if IMAGE not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)  # the new `<image>` embedding row and the projector
    if len(tokenizer) > llm.get_input_embeddings().num_embeddings:  # never shrink (Qwen pads its vocab)
        llm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    config = LlavaConfig(
        vision_config=tower.config,
        text_config=llm.config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE),
        projector_hidden_act="gelu",
        vision_feature_select_strategy=select,  # type: ignore[arg-type]
        vision_feature_layer=feature_layer,
        image_seq_length=tower_features(tower.config, select),
        tie_word_embeddings=bool(getattr(llm.config, "tie_word_embeddings", False)),
    )
    model = LlavaForConditionalGeneration(config)
    target = model.model.vision_tower
    target.load_state_dict(_same_keys(_vision_weights(tower), target.state_dict()))
    model.model.language_model.load_state_dict(llm.get_decoder().state_dict())
    if not config.tie_word_embeddings:
        model.lm_head.load_state_dict(llm.get_output_embeddings().state_dict())
    model.config.pad_token_id = tokenizer.pad_token_id
    return MMGeoLM(model, tokenizer, image_processor, dict(meta or {}))


def image_tokens(bundle: MMGeoLM, question: str, max_length: int) -> list[int]:
    """Token ids of the prompt for ``question`` with ``<image>`` expanded to
    :attr:`MMGeoLM.image_seq_length` tokens. Raises ImageTokenError if the text has not
    exactly one ``<image>``, or if the prompt is longer than ``max_length`` (its image tokens
    would be cut)."""
    tok = bundle.tokenizer
    image_id = tok.convert_tokens_to_ids(IMAGE)
    ids = tok(PROMPT.format(question=question), add_special_tokens=False)["input_ids"]
    found = sum(1 for i in ids if i == image_id)
    if found != 1:
        raise ImageTokenError(
            f"the prompt has {found} `{IMAGE}` tokens, expected 1 per image: {question[:60]!r}"
        )
    at = ids.index(image_id)
    ids = ids[:at] + [image_id] * bundle.image_seq_length + ids[at + 1 :]
    if len(ids) > max_length:
        raise ImageTokenError(
            f"a prompt of {len(ids)} tokens ({bundle.image_seq_length} image tokens) exceeds --max-length "
            f"{max_length}: truncation would cut image tokens; raise --max-length"
        )
    return ids


def check_image_tokens(bundle: MMGeoLM, input_ids: torch.Tensor, images: int) -> None:
    """Raise ImageTokenError unless ``input_ids`` (B, L) hold exactly ``images`` ×
    :attr:`MMGeoLM.image_seq_length` image tokens, the number of features the tower and
    projector give for ``images`` images."""
    found = int((input_ids == bundle.model.config.image_token_index).sum())
    want = images * bundle.image_seq_length
    if found != want:
        raise ImageTokenError(
            f"image-token mismatch: {found} `{IMAGE}` tokens for {images} image(s) of "
            f"{bundle.image_seq_length} features each ({want} expected; "
            f"select={bundle.model.config.vision_feature_select_strategy})"
        )


def pixels(bundle: MMGeoLM, images: list[Any]) -> torch.Tensor:
    """(B, 3, S, S) float32 pixel values of PIL ``images`` by the model's image processor."""
    rgb = [im.convert("RGB") for im in images]
    return bundle.image_processor(images=rgb, return_tensors="pt")["pixel_values"]


def save(bundle: MMGeoLM, out: Path) -> Path:
    """Save ``bundle`` to the directory ``out`` (module docstring); returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    if hasattr(model, "merge_and_unload"):  # a LoRA-wrapped model is saved merged
        model = model.merge_and_unload()
    with no_progress_bars():
        model.save_pretrained(out, safe_serialization=True)
    bundle.tokenizer.save_pretrained(out)
    bundle.image_processor.save_pretrained(out)
    (out / "mmgeolm.json").write_text(
        json.dumps(bundle.meta, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return out


def resolve(path: str | Path) -> Path:
    """The model directory of a run directory (its ``final``) or of a model directory itself.
    Raises ModelError naming ``path`` if neither holds an MMGeoLM."""
    p = Path(path)
    for candidate in (p, p / "final"):
        if (candidate / "mmgeolm.json").is_file():
            return candidate
    raise ModelError(f"{path}: no MMGeoLM here (expected mmgeolm.json in it or in {p / 'final'})")


def load(path: str | Path, device: torch.device | str = "cpu") -> MMGeoLM:
    """An MMGeoLM saved by :func:`save` (or a run directory holding one in ``final``), in eval
    mode on ``device``. Raises ModelError if it cannot be loaded."""
    from transformers import AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration

    where = resolve(path)
    try:
        with no_progress_bars():
            model = LlavaForConditionalGeneration.from_pretrained(where, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
        processor = CLIPImageProcessor.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{where}: cannot load the MMGeoLM: {str(e).splitlines()[0]}") from None
    meta = json.loads((where / "mmgeolm.json").read_text(encoding="utf-8"))
    return MMGeoLM(model.to(device).eval(), tokenizer, processor, meta)  # type: ignore[arg-type]
