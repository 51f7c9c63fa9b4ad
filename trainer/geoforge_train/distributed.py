"""Devices, precision and data parallelism of the MMCLIP trainer: DDP or FSDP2 under torchrun.

One process per device, launched by ``torchrun`` (one machine: ``--nproc-per-node G``; several:
``--nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT``, docs/distributed.md). The
process group is gloo on CPU and nccl on CUDA. The model is wrapped in one of:

* ``DistributedDataParallel`` (default): every rank holds the whole model, gradients are
  averaged by all-reduce;
* FSDP2 (``--fsdp``): :func:`torch.distributed.fsdp.fully_shard` on each transformer block of
  both towers and then on the root, so each rank holds ``1/W`` of the weights, gradients and
  AdamW state, and gathers a block's weights only while it runs (for towers that do not fit
  on one device). With bf16 the blocks gather their weights in bf16 and reduce gradients in
  fp32 (``MixedPrecisionPolicy``), and autocast handles the rest as without FSDP.

Checkpoints are the same file whatever the wrapper: under FSDP the full model and optimizer
state is gathered to rank 0 (``get_state_dict`` with ``full_state_dict=True,
cpu_offload=True``) and written as single-process training writes it, so ``eval``, ``export``
and ``--resume`` (with or without ``--fsdp``, on any number of ranks) read it unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from geoforge.errors import UsageError

#: ``--precision`` values: ``auto`` is bf16 on a CUDA device that supports it, else fp32;
#: ``bf16`` is bf16 autocast (open_clip's ``--precision amp_bf16``), ``fp32`` no autocast.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class Dist:
    """The process group as torchrun set it up: ``rank``, ``world_size``, ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the torchrun process group if ``WORLD_SIZE`` > 1: nccl when ``device`` (a
    ``--device`` value) resolves to CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """A torch device from ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or
    ``cuda:N``; ``auto`` and ``cuda`` take device ``local_rank`` (torchrun's ``LOCAL_RANK``).
    Raises UsageError if it does not exist here."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {name}: no CUDA device is available on this machine; use --device cpu"
            )
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    raise UsageError(f"--device {name}: expected auto, cpu, cuda or cuda:N")


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for a ``--precision`` value (:data:`PRECISIONS`) on ``device``:
    ``auto`` is bf16 where ``torch.cuda.is_bf16_supported()`` (Ampere and later), else fp32."""
    if name == "auto":
        cuda = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if cuda else "fp32"
    return name


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The residual attention blocks of both towers of an open_clip model (the units FSDP
    shards and gradient checkpointing recomputes), in module order."""
    from open_clip.transformer import CustomResidualAttentionBlock, ResidualAttentionBlock

    kinds = (ResidualAttentionBlock, CustomResidualAttentionBlock)
    return [m for m in model.modules() if isinstance(m, kinds)]


def wrap(model: nn.Module, ddp: Dist, device: torch.device, fsdp: bool, precision: str) -> nn.Module:
    """The module the training step calls: ``model`` itself on one rank without ``fsdp``,
    else DDP, or FSDP2 applied in place (``model`` is then the returned module).

    FSDP2 shards every block of :func:`transformer_blocks`, then the root (embeddings,
    projections); 0-d parameters (the logit scale and bias), which ``fully_shard`` cannot
    shard, stay whole on every rank and :func:`finish_gradients` averages their gradients.
    ``encode_image`` and ``encode_text`` are registered as forward methods
    (``register_fsdp_forward_method``), so held-out evaluation can call them. ``precision``
    is ``fp32`` or ``bf16``. Raises UsageError when ``fsdp`` is asked of a model without
    open_clip transformer blocks."""
    if fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        blocks = transformer_blocks(model)
        if not blocks:
            raise UsageError("--fsdp: this model has no open_clip transformer blocks to shard")
        bf16 = precision == "bf16"
        policy = MixedPrecisionPolicy(torch.bfloat16, torch.float32) if bf16 else MixedPrecisionPolicy()
        for block in blocks:
            fully_shard(block, mp_policy=policy)
        scalars = {p for p in model.parameters() if p.ndim == 0}
        fully_shard(model, ignored_params=scalars or None)
        for method in ("encode_image", "encode_text"):
            register_fsdp_forward_method(model, method)
        return model
    if ddp.world_size == 1:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def is_sharded(net: nn.Module) -> bool:
    """True when ``net`` is an FSDP2 module (its weights live in shards across ranks)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(net, FSDPModule)


def unwrap(net: nn.Module) -> nn.Module:
    """The open_clip model inside DDP (FSDP2 works in place, so its module is the model)."""
    return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


@contextmanager
def gradient_sync(net: nn.Module, sync: bool) -> Iterator[None]:
    """Within it, backward passes reduce gradients across ranks only if ``sync``: the
    micro-batches before the last of an accumulated step skip it (DDP's ``no_sync``, FSDP2's
    ``set_requires_gradient_sync(False)``) and gradients accumulate locally."""
    if sync:
        yield
    elif isinstance(net, nn.parallel.DistributedDataParallel):
        with net.no_sync():
            yield
    elif is_sharded(net):
        net.set_requires_gradient_sync(False)  # type: ignore[operator]
        try:
            yield
        finally:
            net.set_requires_gradient_sync(True)  # type: ignore[operator]
    else:
        yield


def finish_gradients(net: nn.Module) -> None:
    """Average across ranks the gradients that FSDP2 leaves alone (its ignored 0-d
    parameters), as DDP averages every gradient; a no-op otherwise. Call after the last
    backward of a step."""
    if not is_sharded(net):
        return
    from torch.distributed.tensor import DTensor

    for p in net.parameters():
        if p.grad is not None and not isinstance(p, DTensor):
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


def full_state(net: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's and the optimizer's full state dicts, as one unwrapped process makes them
    (``model.state_dict()``, and ``optimizer.state_dict()`` with parameters numbered in the
    order of its groups). Under FSDP2 this is a collective (every rank calls it) and only rank
    0 gets the dicts, gathered on the CPU; the other ranks get empty ones."""
    if not is_sharded(net):
        return unwrap(net).state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state, optim_state = get_state_dict(net, optimizer, options=options)
    groups: Any = optim_state.get("param_groups")
    if not groups:
        return model_state, optim_state
    names = [name for group in groups for name in group["params"]]
    return model_state, _renamed(dict(optim_state), {name: i for i, name in enumerate(names)})


def load_optimizer(net: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a full optimizer state dict (:func:`full_state`'s, or any ``optimizer.state_dict()``
    of the same parameter groups) into ``optimizer``; under FSDP2 each rank keeps its shard
    (``set_optimizer_state_dict`` with ``full_state_dict=True``)."""
    if not is_sharded(net):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    names = {p: name for name, p in net.named_parameters()}
    order = [names[p] for group in optimizer.param_groups for p in group["params"]]
    set_optimizer_state_dict(
        net,
        optimizer,
        _renamed(state, dict(enumerate(order))),
        options=StateDictOptions(full_state_dict=True),
    )


def _renamed(state: dict[str, Any], key: dict[Any, Any]) -> dict[str, Any]:
    """An optimizer state dict with each parameter's key (an index or a qualified name)
    replaced by ``key[old]``."""
    return {
        "state": {key[k]: v for k, v in state["state"].items()},
        "param_groups": [{**g, "params": [key[k] for k in g["params"]]} for g in state["param_groups"]],
    }
