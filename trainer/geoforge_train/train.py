"""The MMCLIP training loop: a thin loop on torch, single process or torchrun + DDP or FSDP2.

Launch: ``geoforge train mmclip --data DIR --out RUN`` on one process, or ``torchrun
--nproc-per-node N $(which geoforge) train mmclip ...`` (gloo on CPU, nccl on GPU; several
machines and FSDP2 in :mod:`geoforge_train.distributed` and docs/distributed.md). The loop
has bf16 autocast by default on GPUs that support it, gradient accumulation that keeps every
negative in the loss (features of the other micro-batches are cached, as open_clip's
``accum_freq`` does), open_clip's gradient checkpointing and ``torch.compile`` on request, a
cosine schedule with linear warmup, checkpoints with optimizer, scheduler and RNG state,
``--resume``, JSONL and TensorBoard logs and a loss-curve PNG.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from geoforge.errors import UsageError
from geoforge_train.data import (
    TEXT_SOURCES,
    CorpusIndex,
    NegativeUse,
    epoch_order,
    excess_negatives,
    steps_per_epoch,
)
from geoforge_train.distributed import (
    PRECISIONS,
    Dist,
    finish_gradients,
    gradient_sync,
    init_distributed,
    load_optimizer,
    resolve_device,
    resolve_precision,
    transformer_blocks,
    unwrap,
    wrap,
)
from geoforge_train.loader import device_batches, training_dataset, training_loader
from geoforge_train.loss import LOSSES, HardNegativeClipLoss, Negatives
from geoforge_train.models import (
    create_model,
    link_checkpoint,
    load_checkpoint,
    preprocess_cfg,
    prune_checkpoints,
    save_checkpoint,
)
from geoforge_train.resume import RESUME_KEEPS, check_same_run, config_json, planned_steps


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint. ``data`` and ``val_data`` are
    sources as :func:`geoforge_train.data.shard_paths` reads them (``::``-joined directories,
    shards, brace patterns). ``batch_size`` is per rank and per micro-batch; the global batch
    is ``batch_size · accum · world_size``. ``log_every``: a plain progress line every that
    many steps when the output is not an interactive terminal; ``val_every``: evaluate on
    ``val_data`` every that many steps (0: after the last step only). ``device`` and
    ``precision`` may be ``auto`` (:func:`geoforge_train.distributed.resolve_device`,
    :func:`~geoforge_train.distributed.resolve_precision`); ``grad_checkpointing`` recomputes
    each transformer block in the backward pass (open_clip's ``set_grad_checkpointing``);
    ``compile`` applies ``torch.compile`` to the model; ``fsdp`` shards it with FSDP2 instead
    of DDP. ``data_cache``: a pre-decoded image cache of ``data`` (:mod:`geoforge_train.cache`)
    read instead of the PNGs."""

    data: str
    out: str
    model: str = "geoforge-tiny"
    pretrained: str | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    accum: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.1
    warmup: int = 10
    loss: str = "mmclip"
    text_negatives: tuple[str, ...] = ()
    k_text: int = 0
    k_image: int = 0
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    workers: int = 0
    save_every: int = 0
    save_total_limit: int | None = None
    resume: bool = False
    strict: bool = False
    rotate: float = 0.0
    downscale: float = 1.0
    log_every: int = 10
    val_data: str | None = None
    val_every: int = 0
    grad_checkpointing: bool = False
    compile: bool = False
    fsdp: bool = False
    data_cache: str | None = None

    def check(self) -> None:
        """Raise UsageError for inconsistent settings, naming the option."""
        if self.loss not in LOSSES:
            raise UsageError(f"--loss {self.loss}: expected one of {', '.join(LOSSES)}")
        for s in self.text_negatives:
            if s not in TEXT_SOURCES:
                raise UsageError(f"--text-negatives {s}: expected {' or '.join(TEXT_SOURCES)}")
        if self.k_text and not self.text_negatives:
            raise UsageError(f"--k-text {self.k_text} needs --text-negatives caption and/or retrieval")
        if self.text_negatives and not self.k_text:
            raise UsageError(
                f"--text-negatives {' '.join(self.text_negatives)} needs --k-text N (negatives per sample)"
            )
        if self.loss != "mmclip" and not (self.k_text or self.k_image):
            raise UsageError(f"--loss {self.loss} needs negatives: set --k-text and/or --k-image")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision {self.precision}: expected {', '.join(PRECISIONS)}")
        if self.batch_size < 1 or self.accum < 1 or self.epochs < 1:
            raise UsageError("--batch-size, --accum and --epochs must be at least 1")
        if not self.lr > 0:
            raise UsageError(f"--lr {self.lr:g}: the learning rate must be positive")
        if self.weight_decay < 0:
            raise UsageError(f"--weight-decay {self.weight_decay:g}: must be 0 or more")
        if self.val_every and not self.val_data:
            raise UsageError(f"--val-every {self.val_every} needs --val-data (a held-out corpus)")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise UsageError(f"--save-total-limit {self.save_total_limit}: keep at least 1 checkpoint")


def cosine_lambda(warmup: int, total: int):  # type: ignore[no-untyped-def]
    """Linear warmup to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``
    (open_clip's ``cosine_lr``, as a LambdaLR factor so it checkpoints)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


class StepBatches:
    """The micro-batches of steps ``start`` to ``total`` for one rank, as lists of
    ``(epoch, index)`` (the epoch seeds each sample's augmentation, so workers need it):
    step ``s`` is batch ``s mod spe`` of epoch ``s // spe`` in :func:`epoch_order`, cut into
    ``accum`` micro-batches of ``micro`` samples. Deterministic, so a resumed run reads the
    same samples as an unbroken one."""

    def __init__(
        self, n: int, seed: int, ddp: Dist, micro: int, accum: int, spe: int, start: int, total: int
    ) -> None:
        self.n, self.seed, self.ddp, self.micro, self.accum = n, seed, ddp, micro, accum
        self.spe, self.start, self.total = spe, start, total

    def __len__(self) -> int:
        return (self.total - self.start) * self.accum

    def __iter__(self):  # type: ignore[no-untyped-def]
        orders: dict[int, list[list[int]]] = {}
        for step in range(self.start, self.total):
            epoch, pos = divmod(step, self.spe)
            if epoch not in orders:
                orders = {
                    epoch: epoch_order(
                        self.n, self.seed, epoch, self.ddp.rank, self.ddp.world_size, self.micro * self.accum
                    )
                }
            indices = orders[epoch][pos]
            for j in range(self.accum):
                yield [(epoch, i) for i in indices[j * self.micro : (j + 1) * self.micro]]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """No weight decay on gains, biases, embeddings and the logit scale (as open_clip)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        flat = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if flat else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


@dataclass
class Features:
    """Features of a batch: ``image``/``text`` (B, D); negatives (B, K, D) and (B, L, D) with
    zeros where padded; all L2-normalised."""

    image: Tensor
    text: Tensor
    neg_text: Tensor | None = None
    neg_image: Tensor | None = None
    scale: Tensor = field(default_factory=lambda: torch.tensor(1.0))
    bias: Tensor | None = None


def encode(model: nn.Module, batch: dict[str, Tensor], device: torch.device) -> Features:
    """One forward pass over positives and the valid negatives of a batch (padded negatives
    are not encoded: their features are zeros, and the loss masks them)."""
    images, texts = batch["image"].to(device), batch["text"].to(device)
    b = images.shape[0]
    k, l = batch["neg_text"].shape[1], batch["neg_image"].shape[1]
    if not (k or l):  # in-batch only: no concatenation, no mask indexing (each a device sync)
        out = model(image=images, text=texts)
        return Features(out[0], out[1], scale=out[2], bias=out[3] if len(out) > 3 else None)
    t_mask, i_mask = batch["neg_text_mask"].to(device), batch["neg_image_mask"].to(device)
    all_images = torch.cat([images, batch["neg_image"].to(device)[i_mask]])
    all_texts = torch.cat([texts, batch["neg_text"].to(device)[t_mask]])
    out = model(image=all_images, text=all_texts)
    img, txt, scale = out[0], out[1], out[2]
    bias = out[3] if len(out) > 3 else None
    feats = Features(img[:b], txt[:b], scale=scale, bias=bias)
    if k:
        neg = txt.new_zeros((b, k, txt.shape[1]))
        neg[t_mask] = txt[b:]
        feats.neg_text = neg
    if l:
        neg = img.new_zeros((b, l, img.shape[1]))
        neg[i_mask] = img[b:]
        feats.neg_image = neg
    return feats


def _negatives(batch: dict[str, Tensor], feats: Features, device: torch.device) -> Negatives:
    return Negatives(
        text=feats.neg_text,
        text_mask=batch["neg_text_mask"].to(device),
        text_ids=batch["neg_text_id"].to(device),
        image=feats.neg_image,
        image_mask=batch["neg_image_mask"].to(device),
        image_ids=batch["neg_image_id"].to(device),
        pos_text_ids=batch["text_id"].to(device),
        pos_image_ids=None,
    )


def _cat(parts: list[Tensor | None]) -> Tensor | None:
    return None if parts[0] is None else torch.cat(parts)  # type: ignore[arg-type]


def _merge(batches: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0] if isinstance(batches[0][k], Tensor)}


def train(config: TrainConfig, lines: TextIO | None = None) -> dict[str, object]:
    """Run training per ``config``; returns a summary (final loss, steps, seconds, paths, and
    the last held-out metrics under ``val`` with ``val_data``). ``lines`` gets the plain
    progress lines (default: stdout). The summary also holds the ``device`` and
    ``precision`` used, ``first_step_seconds`` (the first step of this run, which holds
    ``torch.compile``'s compilation and the warm-up) and ``step_seconds`` (the median of the
    others; both without held-out evaluation and checkpoint writing), and ``warnings``: the
    lines printed at the start (stderr, ``warning:`` in front), such as a ``--k-image`` or
    ``--k-text`` above what the corpus holds (:func:`geoforge_train.data.excess_negatives`).

    Raises geoforge errors for bad input (missing corpus, no negatives where asked,
    a checkpoint from another model, a device that does not exist, a stale cache) before
    ``config.out`` is created, so a refused run leaves no directory; lets real failures
    propagate."""
    from geoforge_train.evaluate import Loaded, evaluate
    from geoforge_train.logs import RunLog

    config.check()
    ddp = init_distributed(config.device)
    if config.fsdp and ddp.world_size == 1:
        raise UsageError("--fsdp shards the model across ranks: launch it with torchrun, 2 or more processes")
    device = resolve_device(config.device, ddp.local_rank)
    precision = resolve_precision(config.precision, device)
    if device.type == "cuda":  # TF32 matmuls for the fp32 parts (open_clip_train does the same)
        torch.cuda.set_device(device)  # the device nccl and FSDP2's device mesh use
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)
    out = Path(config.out)  # made only once the settings and data are checked (just below)
    model, tokenizer, image_size = create_model(config.model, config.pretrained, device)
    if config.grad_checkpointing:
        model.set_grad_checkpointing(True)  # type: ignore[operator]
    dataset = training_dataset(config, tokenizer, preprocess_cfg(model), uint8=device.type == "cuda")
    index = dataset.index
    fingerprint = index.fingerprint()
    micro = config.batch_size
    spe = steps_per_epoch(len(dataset), micro * config.accum, ddp.world_size)
    if spe == 0:
        raise UsageError(
            f"{config.data}: {len(dataset)} samples are fewer than one global batch of "
            f"{micro * config.accum * ddp.world_size}; lower --batch-size or --accum"
        )
    total = min(config.max_steps or spe * config.epochs, spe * config.epochs)
    start, history, state, planned = 0, [], None, total
    latest = out / "checkpoints" / "latest.pt"
    if not config.resume and latest.is_file():
        raise UsageError(f"{out} already holds a run: pass --resume to continue it or choose another --out")
    if config.resume:
        if not latest.is_file():
            raise UsageError(f"--resume: no checkpoint at {latest}")
        state = load_checkpoint(latest, model, config.model)  # the weights, before sharding
        stored = state.get("config") or {}
        check_same_run(
            out, stored, config_json(config), RESUME_KEEPS, state.get("data_fingerprint"), fingerprint
        )
        start, history = int(state["step"]), list(state["history"])
        planned = planned_steps(state.get("config") or {}, spe) or total
        _set_rng(state["rng"])
    if start >= total:  # a finished run: say so and leave every file as it is
        return _nothing_to_train(config, index, dataset.use, total, spe, history, device, precision, ddp.main)
    if config.compile and config.fsdp:  # per block, FSDP2's hooks between them (as torchtitan)
        for block in transformer_blocks(model):
            block.compile()
    elif config.compile:
        model.compile()
    net = wrap(model, ddp, device, config.fsdp, precision)
    optimizer = torch.optim.AdamW(  # after wrap: FSDP2 replaces the parameters by their shards
        _param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_lambda(config.warmup, total))
    if state is not None:
        load_optimizer(net, optimizer, state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    loss_fn = HardNegativeClipLoss(config.loss, ddp.rank, ddp.world_size)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, ddp.main, total, start, config.log_every, lines or sys.stdout)
    warned = index.skipped_warnings() + excess_negatives(index, dataset.use)
    if planned != total:  # --epochs or --max-steps changed on --resume
        now, then = (config.lr * cosine_lambda(config.warmup, n)(start) for n in (total, planned))
        warned.append(
            f"the run was planned for {planned} steps and now ends at step {total}: its cosine "
            f"learning-rate schedule is recomputed for {total} steps (at step {start}, {now:.3g} on "
            f"it against {then:.3g} on the planned one)"
        )
    saved = start if config.resume else None  # the last step whose checkpoint is on disk
    for message in warned:
        log.warn(message)
    val: dict[str, object] | None = None
    sampler = StepBatches(len(dataset), config.seed, ddp, micro, config.accum, spe, start, total)
    loader = training_loader(dataset, sampler, config.workers, device)
    batches = device_batches(loader, device, dataset.encode.transform)
    t0 = tick = time.perf_counter()
    step_seconds: list[float] = []  # each step's, from the end of the last one's bookkeeping
    global_batch = micro * config.accum * ddp.world_size
    step = start
    try:
        for step in range(start, total):
            epoch = step // spe
            micro_batches = [next(batches) for _ in range(config.accum)]
            lr = scheduler.get_last_lr()[0]  # the rate this step uses (logged with it)
            loss = _step(net, micro_batches, loss_fn, optimizer, device, autocast, config.accum)
            scheduler.step()
            same = sum(int(b["neg_text_same_tokens"].sum()) for b in micro_batches)
            value, duplicates, same = _global_stats(loss, loss_fn.duplicate_share, same, ddp)
            history.append(value)
            step_seconds.append(time.perf_counter() - tick)
            held_out = None
            # under FSDP2 every rank runs the evaluation: each forward pass gathers shards
            if (
                config.val_data
                and (ddp.main or config.fsdp)
                and (step + 1 == total or (config.val_every and (step + 1) % config.val_every == 0))
            ):
                model.eval()
                loaded = Loaded("val", model, tokenizer, image_size, preprocess_cfg(model))
                held_out = val = evaluate(loaded, config.val_data, device, warn=log.warn)
                model.train()
            log.step(
                step,
                epoch,
                value,
                lr,
                float(model.logit_scale.detach().exp()),
                _rate(step_seconds, global_batch),
                duplicates=duplicates,
                same_tokens=same,
                epoch_end=(step + 1) % spe == 0 or step + 1 == total,
                val=held_out,
                seconds=step_seconds[-1],
            )
            if config.save_every and (step + 1) % config.save_every == 0:
                save_checkpoint(
                    out, step + 1, net, optimizer, scheduler, config, history, _get_rng(), False, fingerprint
                )
                prune_checkpoints(out, config.save_total_limit)
                saved = step + 1
            tick = time.perf_counter()
        if saved == total:  # written at this step already (or resumed at the end): link it only
            link_checkpoint(out, total, final=True)
        else:
            save_checkpoint(
                out, total, net, optimizer, scheduler, config, history, _get_rng(), True, fingerprint
            )
        prune_checkpoints(out, config.save_total_limit)  # after final.pt moved off an older step
    finally:
        log.close(history)
        if ddp.world_size > 1 and dist.is_initialized():
            dist.barrier()
    seconds = time.perf_counter() - t0
    return _summary(
        config, index, total, total - start, history, device, precision, warned, val, seconds, step_seconds
    )


def _summary(
    config: TrainConfig,
    index: CorpusIndex,
    total: int,
    trained: int,
    history: list[float],
    device: torch.device,
    precision: str,
    warned: list[str],
    val: dict[str, object] | None = None,
    seconds: float = 0.0,
    step_seconds: list[float] | tuple[()] = (),
) -> dict[str, object]:
    """What :func:`train` returns: ``total`` steps (``trained`` of them in this call), the last
    loss of ``history``, the held-out metrics ``val``, the wall time ``seconds``, the first
    step's and the median later step's seconds from ``step_seconds``, and the final
    checkpoint's path."""
    return {
        "steps": total,
        "trained": trained,
        "final_loss": history[-1] if history else None,
        "val": val,
        "seconds": round(seconds, 2),
        "first_step_seconds": round(step_seconds[0], 3) if step_seconds else None,
        "step_seconds": round(statistics.median(step_seconds[1:]), 3) if step_seconds[1:] else None,
        "device": str(device),
        "precision": precision,
        "checkpoint": str(Path(config.out) / "checkpoints" / "final.pt"),
        "skipped_shards": index.skipped,
        "warnings": warned,
    }


def _nothing_to_train(
    config: TrainConfig,
    index: CorpusIndex,
    use: NegativeUse,
    total: int,
    spe: int,
    history: list[float],
    device: torch.device,
    precision: str,
    main: bool,
) -> dict[str, object]:
    """The summary of a resumed run that already reached its last step, ``total``: its warnings
    (the negatives' and this one) go to stderr on rank 0, and no file is opened for writing
    (no log line, curve, TensorBoard event or checkpoint)."""
    cap = f", --max-steps {config.max_steps}" if config.max_steps else ""
    done = (
        f"the run already reached its last step, {total} (--epochs {config.epochs} × {spe} steps "
        f"per epoch{cap}); nothing to train"
    )
    warned = [*index.skipped_warnings(), *excess_negatives(index, use), done]
    if main:
        for message in warned:
            sys.stderr.write(f"warning: {message}\n")
    return _summary(config, index, total, 0, history, device, precision, warned)


def _step(
    net: nn.Module,
    batches: list[dict[str, Tensor]],
    loss_fn: HardNegativeClipLoss,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    autocast,
    accum: int,  # type: ignore[no-untyped-def]
) -> Tensor:
    """One optimiser step over ``accum`` micro-batches; returns the (local) loss.

    With ``accum`` > 1, features of every micro-batch are first computed without gradient;
    then each micro-batch is encoded again with gradient, put in place of its cached
    features, and the loss of the whole accumulated batch (every negative included) is
    back-propagated. The summed gradient equals that of one large batch: the logit scale (and
    bias) enter the graph only in the last micro-batch, so their gradient is counted once,
    not ``accum`` times."""
    optimizer.zero_grad(set_to_none=True)
    whole = _merge(batches) if accum > 1 else batches[0]
    if accum == 1:
        with autocast:
            f = encode(net, whole, device)
            loss = loss_fn(f.image, f.text, f.scale, _negatives(whole, f, device), f.bias)
        loss.backward()
    else:
        with torch.no_grad(), autocast:
            cached = [encode(net, b, device) for b in batches]
        for j, b in enumerate(batches):
            with gradient_sync(net, j == accum - 1), autocast:
                fj = encode(net, b, device)
                parts = [fj if k == j else c for k, c in enumerate(cached)]
                scale, bias = fj.scale, fj.bias
                if j != accum - 1:  # each backward holds the whole loss: count ∂L/∂scale once
                    scale = scale.detach()
                    bias = bias.detach() if bias is not None else None
                f = Features(
                    torch.cat([p.image for p in parts]),
                    torch.cat([p.text for p in parts]),
                    _cat([p.neg_text for p in parts]),
                    _cat([p.neg_image for p in parts]),
                    scale,
                    bias,
                )
                loss = loss_fn(f.image, f.text, f.scale, _negatives(whole, f, device), f.bias)
                loss.backward()
    finish_gradients(net)
    optimizer.step()
    with torch.no_grad():
        unwrap(net).logit_scale.clamp_(0, math.log(100))  # type: ignore[operator]
    return loss.detach()


def _rate(step_seconds: list[float], global_batch: int) -> float:
    """Samples per second of a run's steps so far: the first step's own rate until there is
    another, then that of the steps after the first (the first holds compilation, worker
    start-up and warm-up, and is logged apart as its ``step_seconds``)."""
    timed = step_seconds[1:] or step_seconds
    return len(timed) * global_batch / sum(timed)


def _global_stats(loss: Tensor, duplicates: Tensor, same_tokens: int, ddp: Dist) -> tuple[float, float, int]:
    """One all-reduce for a step's figures: the loss and the caption-duplicate share (0-d
    float tensors of this rank's rows) averaged over ranks, which is their value over the
    global batch since every rank has as many rows, and the same-token caption negatives
    (this rank's count) summed."""
    if ddp.world_size == 1:
        return float(loss), float(duplicates), same_tokens
    stats = torch.stack([loss.detach().double(), duplicates.double(), loss.new_tensor(same_tokens).double()])
    dist.all_reduce(stats)
    return float(stats[0]) / ddp.world_size, float(stats[1]) / ddp.world_size, round(float(stats[2]))


def _get_rng() -> dict[str, object]:
    """The RNG states as tensors, lists and numbers (what ``weights_only`` loading allows)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]
    return {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}


def _set_rng(state: dict[str, object]) -> None:
    torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
    kind, keys, pos, has_gauss, gauss = state["numpy"]  # type: ignore[misc]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]  # type: ignore[misc]
    random.setstate((version, tuple(internal), gauss_next))
