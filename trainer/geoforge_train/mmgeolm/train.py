"""Training MMGeoLM with the Hugging Face ``Trainer``: stage ``align`` and stage ``sft``.

* ``align`` (MMGeoLM §3, LLaVA stage 1): a new model from an MMCLIP tower and a causal LM
  (:func:`geoforge_train.mmgeolm.model.assemble`); only the projector trains, on captions
  (learning rate 1e-3 by default, the paper's).
* ``sft`` (stage 2): from an ``align`` run; the projector and the language model train on the
  engine's Q&A, the tower frozen (2e-5 by default). ``lora`` trains low-rank adapters of the
  language model's attention and MLP projections instead of all its weights (peft), merged
  into the saved model.

The ``Trainer`` brings torchrun/DDP, DeepSpeed ZeRO (``deepspeed``: a JSON config, the
``[deepspeed]`` extra; :data:`ZERO_CONFIGS`: ZeRO-2 for 7B-class models, ZeRO-3 beyond),
bf16 autocast, gradient checkpointing and checkpoints with optimizer, scheduler and RNG
state (``OUT/checkpoint-N``, resumed with ``resume``). Logs as the MMCLIP trainer's:
``OUT/log.jsonl`` (one row per logged step), TensorBoard scalars in ``OUT/tensorboard``, a
progress bar (or plain lines when stderr is not a terminal) and ``OUT/loss.png``. The
trained model is saved to ``OUT/final``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geoforge.errors import UsageError
from geoforge_train.mmgeolm import model as mm
from geoforge_train.mmgeolm.data import Collate, caption_examples, qa_examples
from geoforge_train.resume import check_same_run, config_json

STAGES = ("align", "sft")
#: The paper's learning rates per stage (MMGeoLM §3).
DEFAULT_LR = {"align": 1e-3, "sft": 2e-5}
#: DeepSpeed configs shipped with the package (``--deepspeed`` takes their paths); every
#: batch, accumulation, clipping and precision value is ``auto``, filled in from the options.
ZERO_CONFIGS = {n: Path(__file__).with_name(f"{n}.json") for n in ("zero2", "zero3")}
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: Settings a resumed run must keep (config key → option): the steps in its checkpoint were
#: taken with them. ``--epochs`` and ``--max-steps`` may change; so may the device, precision,
#: gradient checkpointing, DeepSpeed config and loader workers, which do not change the run.
RESUME_KEEPS = {
    "stage": "--stage",
    "data": "--data",
    "tower": "--tower",
    "llm": "--llm",
    "init": "--init",
    "batch_size": "--batch-size",
    "accum": "--accum",
    "lr": "--lr",
    "warmup": "--warmup",
    "lora": "--lora",
    "lora_r": "--lora-r",
    "seed": "--seed",
    "flips": "--flips",
    "max_length": "--max-length",
    "feature_layer": "--feature-layer",
    "limit": "--limit",
}


@dataclass
class MMGeoLMConfig:
    """One ``geoforge train mmgeolm`` run; saved in ``OUT/config.json``. ``lr`` ``None`` takes
    :data:`DEFAULT_LR` of the stage; ``device`` ``auto`` is CUDA when present; ``precision``
    ``auto`` is bf16 on CUDA and fp32 on CPU; ``batch_size`` is per device."""

    stage: str
    data: str
    out: str
    tower: str | None = None
    llm: str | None = None
    init: str | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    accum: int = 1
    lr: float | None = None
    warmup: int = 0
    weight_decay: float = 0.0
    device: str = "auto"
    precision: str = "auto"
    gradient_checkpointing: bool = False
    lora: bool = False
    lora_r: int = 16
    deepspeed: str | None = None
    save_every: int = 0
    save_total_limit: int | None = None
    resume: bool = False
    seed: int = 0
    flips: bool = False
    max_length: int = 512
    feature_layer: int = -2
    select: str = "default"
    data_workers: int = 0
    log_every: int = 10
    limit: int | None = None

    def check(self) -> None:
        """Raise UsageError naming the option for settings that do not fit together."""
        if self.stage not in STAGES:
            raise UsageError(f"--stage {self.stage}: expected align or sft")
        if self.stage == "align" and not (self.tower and self.llm):
            raise UsageError("--stage align needs --tower (an MMCLIP run or exported tower) and --llm DIR")
        if self.stage == "sft" and not self.init:
            raise UsageError("--stage sft needs --init (the align run or its final/ directory)")
        if self.stage == "sft" and (self.tower or self.llm):
            raise UsageError("--stage sft starts from --init; --tower and --llm belong to --stage align")
        if self.lora and self.stage != "sft":
            raise UsageError("--lora trains the language model: it belongs to --stage sft")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise UsageError(f"--save-total-limit {self.save_total_limit}: keep at least 1 checkpoint")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"--precision {self.precision}: expected auto, fp32 or bf16")
        if self.deepspeed in ZERO_CONFIGS:
            self.deepspeed = str(ZERO_CONFIGS[self.deepspeed])
        if self.deepspeed and not Path(self.deepspeed).is_file():
            raise UsageError(f"--deepspeed {self.deepspeed}: no such config file (or zero2, zero3)")


def pick_device(name: str) -> str:
    """``cuda`` or ``cpu`` for ``--device auto|cpu|cuda``. Raises UsageError for CUDA asked of
    a machine without it, or another name."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available on this machine; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: expected auto, cpu or cuda")
    return name


def build(config: MMGeoLMConfig) -> mm.MMGeoLM:
    """The model a run starts from: assembled for ``align``, loaded from ``init`` for ``sft``,
    with the tower frozen, and only what the stage trains left trainable."""
    if config.stage == "align":
        tower, processor = mm.load_tower(str(config.tower))
        llm, tokenizer = mm.load_llm(str(config.llm))
        meta = {"tower": str(config.tower), "llm": str(config.llm)}
        bundle = mm.assemble(
            tower,
            processor,
            llm,
            tokenizer,
            feature_layer=config.feature_layer,
            select=config.select,
            meta=meta,
            seed=config.seed,
        )
    else:
        bundle = mm.load(str(config.init))
        bundle.model.train()
    model = bundle.model
    for p in model.parameters():
        p.requires_grad = False
    for p in model.model.multi_modal_projector.parameters():
        p.requires_grad = True
    if config.stage == "sft" and config.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=2 * config.lora_r,
            target_modules=rf"^model\.language_model\..*\.({'|'.join(LORA_TARGETS)})$",
            modules_to_save=["multi_modal_projector"],
        )
        bundle.model = get_peft_model(model, lora)
    elif config.stage == "sft":
        for p in model.model.language_model.parameters():
            p.requires_grad = True
        if not model.config.tie_word_embeddings:
            for p in model.lm_head.parameters():
                p.requires_grad = True
    bundle.meta = {**bundle.meta, "stage": config.stage, "lora": config.lora}
    return bundle


class _Logs:
    """A ``TrainerCallback`` (built by :func:`_callback`) writing ``log.jsonl``, TensorBoard
    scalars and progress, on the main process."""

    def __init__(self, out: Path, total: int, every: int, resumed_at: int) -> None:
        self.out, self.total, self.every = out, total, max(1, every)
        self.history: list[float] = []
        self.start = time.perf_counter()
        rows = []
        path = out / "log.jsonl"
        if resumed_at and path.is_file():  # keep the rows of the steps the resumed run did
            rows = [
                r
                for r in path.read_text(encoding="utf-8").splitlines()
                if json.loads(r)["step"] <= resumed_at
            ]
        path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        self.jsonl = path.open("a", encoding="utf-8")
        self.tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:  # pragma: no cover - tensorboard is in the [train] extra
            pass
        self.bar: Any = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("mmgeolm"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
            )
            self.task = self.bar.add_task("train", total=total, completed=resumed_at)
            self.bar.start()

    def log(self, step: int, logs: dict[str, float]) -> None:
        if "loss" not in logs:
            return
        row = {
            "step": step,
            "loss": logs["loss"],
            "lr": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
        }
        row["seconds"] = round(time.perf_counter() - self.start, 3)
        self.history.append(float(logs["loss"]))
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k in ("loss", "lr", "grad_norm"):
                if row[k] is not None:
                    self.tb.add_scalar(f"train/{k}", row[k], step)
        if self.bar is None and (step % self.every == 0 or step == self.total):
            sys.stderr.write(f"step {step}/{self.total} loss {row['loss']:.4f} lr {row['lr'] or 0:.3g}\n")

    def step(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.tb is not None:
            self.tb.close()
        self.jsonl.close()
        if self.history:
            from geoforge_train.logs import loss_curve

            loss_curve(self.history, self.out / "loss.png")


def _callback(logs: _Logs):  # type: ignore[no-untyped-def]
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if state.is_world_process_zero and logs:
                sink.log(state.global_step, logs)

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.is_world_process_zero:
                sink.step(state.global_step)

    sink = logs
    return LogCallback()


def _latest(out: Path) -> Path | None:
    found = sorted(
        out.glob("checkpoint-*"),
        key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit() else -1,
    )
    return found[-1] if found else None


def _effective_lr(config: dict[str, object]) -> dict[str, object]:
    """``config`` (a JSON config) with ``lr`` ``None`` replaced by its stage's
    :data:`DEFAULT_LR`: what ``config.json`` stores, and what ``--resume`` compares (and names),
    the rates that train; runs saved before 2026-12-06 stored ``None``."""
    if config.get("lr") is None and config.get("stage") in DEFAULT_LR:
        return {**config, "lr": DEFAULT_LR[str(config["stage"])]}
    return config


def _stored_config(out: Path) -> dict[str, object]:
    """The ``config.json`` of the run in ``out``. Raises UsageError if it is missing or not
    a JSON object."""
    path = out / "config.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(
            f"--resume: cannot read {path} ({type(e).__name__}), which records the run's settings"
        ) from None
    if not isinstance(stored, dict):
        raise UsageError(f"--resume: {path} is not a JSON object of the run's settings")
    return stored


def train_mmgeolm(config: MMGeoLMConfig) -> dict[str, Any]:
    """Run one stage (module docstring) and return its summary: ``steps``, ``final_loss``,
    ``seconds``, ``examples``, ``samples_per_s`` and ``model`` (the saved directory). Raises
    UsageError for bad settings or an output that exists without ``resume``, DataError for a
    corpus without what the stage reads, ModelError for a tower or LLM that cannot be loaded,
    ImageTokenError for image tokens that do not match the features."""
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

    from geoforge_train.data import CorpusIndex

    config.check()
    out = Path(config.out)
    if out.exists() and any(out.iterdir()) and not config.resume:
        raise UsageError(f"{out} exists: pass --resume to continue that run, or choose a new --out")
    resume_from = _latest(out) if config.resume else None
    if config.resume and resume_from is None:
        raise UsageError(f"--resume: {out} holds no checkpoint-N to continue from")
    fingerprint = CorpusIndex.build(config.data, warn=False).fingerprint()
    if resume_from is not None:
        stored = _stored_config(out)
        then = stored.get("data_fingerprint")
        check_same_run(
            out,
            _effective_lr(stored),
            _effective_lr(config_json(config)),
            RESUME_KEEPS,
            then if isinstance(then, str) else None,
            fingerprint,
        )
    device = pick_device(config.device)
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device == "cuda")
    set_seed(config.seed)
    data = Path(config.data)
    examples = (
        caption_examples(data, config.limit)
        if config.stage == "align"
        else qa_examples(data, flips=config.flips, limit=config.limit)
    )
    bundle = build(config)
    if config.gradient_checkpointing:
        bundle.model.gradient_checkpointing_enable()
        bundle.model.enable_input_require_grads()  # frozen embeddings still pass gradients on
    collate = Collate(bundle, config.max_length, train=True)
    collate([examples[0]])  # image-token and length errors now, before a worker process meets them
    out.mkdir(parents=True, exist_ok=True)
    if resume_from is None:  # a resumed run keeps the config it was started with
        # the rate that trains, not None: config.json says what the run did
        record = {**_effective_lr(config_json(config)), "data_fingerprint": fingerprint}
        (out / "config.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_step = config.batch_size * config.accum * world
    total = config.max_steps or config.epochs * math.ceil(len(examples) / per_step)
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.accum,
        learning_rate=config.lr if config.lr is not None else DEFAULT_LR[config.stage],
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        warmup_steps=config.warmup,
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_strategy="steps" if config.save_every else "no",
        save_steps=config.save_every or 500,
        save_total_limit=config.save_total_limit,
        report_to="none",
        disable_tqdm=True,
        bf16=bf16,
        use_cpu=device == "cpu",
        deepspeed=config.deepspeed,
        seed=config.seed,
        dataloader_num_workers=config.data_workers,
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
    )
    logs = _Logs(out, total, config.log_every, int(resume_from.name.split("-")[1]) if resume_from else 0)
    trainer = Trainer(
        model=bundle.model,
        args=args,
        train_dataset=examples,  # a list of Example: the collator reads them
        data_collator=collate,
        callbacks=[_callback(logs)],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    start = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        logs.close()
    seconds = time.perf_counter() - start
    steps = int(result.global_step)
    final = mm.save(bundle, out / "final") if trainer.is_world_process_zero() else out / "final"
    rows = [json.loads(r) for r in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    return {
        "stage": config.stage,
        "steps": steps,
        "examples": len(examples),
        "final_loss": rows[-1]["loss"] if rows else math.nan,
        "seconds": round(seconds, 2),
        "samples_per_s": round(result.metrics.get("train_samples_per_second", 0.0), 3),
        "model": str(final),
    }
