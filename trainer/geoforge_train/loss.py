"""The hard-negative contrastive loss of MMCLIP, written once.

Notation: a (local) batch of ``B`` pairs with L2-normalised image features ``I`` (B, D) and text
features ``T`` (B, D); each sample ``b`` may bring ``K`` caption negatives ``T⁻_b`` (B, K, D)
and ``L`` image negatives ``I⁻_b`` (B, L, D), with validity masks (B, K) and (B, L); ``s`` is
the logit scale (already exponentiated, as ``open_clip`` models return it). Across ``W``
ranks the in-batch candidates are gathered: ``I_all``, ``T_all`` (W·B, D).

``mmclip`` (default): the symmetric InfoNCE loss of CLIP (Radford et al. 2021, Eq. in Fig. 3)
with each sample's own negatives appended as extra candidates, as NegCLIP does for captions
(Yuksekgonul et al. 2023, §3) and MMGeoLM for captions and images (Sun et al. 2025)::

    logits_i2t[b] = s · [ I_b·T_allᵀ | I_b·T⁻_bᵀ ]        (B, W·B + K)
    logits_t2i[b] = s · [ T_b·I_allᵀ | T_b·I⁻_bᵀ ]        (B, W·B + L)
    loss = ½ (CE(logits_i2t, rank·B + b) + CE(logits_t2i, rank·B + b))

Padded negatives, and negatives that duplicate an in-batch candidate or another negative of
the same sample (same ``id``), are masked to −∞. So are in-batch false negatives: the
off-diagonal pairs (b, j) whose captions have the same id (``pos_text_ids``, gathered across
ranks), in both halves, since caption j then describes image b as well as caption b does.
With K = L = 0 and distinct caption ids (or none) this is exactly ``open_clip.ClipLoss``
(with ``local_loss=True, gather_with_grad=True`` across ranks; any settings on one rank).
Each rank averages over its own rows and gathers with gradient, so the DDP-averaged gradient
equals that of the global batch.

``paper-group``: the group-only softmax of MMGeoLM's Eq. 2, no in-batch terms: each image is
classified among its positive caption and its K caption negatives, each caption among its
positive image and its L image negatives.

``siglip-group``: a sigmoid form over the same groups, ``−log σ(s·x⁺ + t) − Σ log σ(−(s·x⁻ + t))``
averaged per group, with the learnable bias ``t`` of SigLIP (Zhai et al. 2023, Eq. 1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOSSES = ("mmclip", "paper-group", "siglip-group")


@dataclass
class Negatives:
    """Per-sample hard negatives (features already L2-normalised).

    ``text``: (B, K, D) caption negatives; ``text_mask``: (B, K) bool, True where valid;
    ``text_ids``: (B, K) int64 caption ids (equal ids are the same caption), or None.
    ``image``/``image_mask``/``image_ids`` likewise with L image negatives. ``pos_text_ids``
    and ``pos_image_ids``: (B,) int64 ids of the positives, used to mask negatives that
    duplicate a positive of the (global) batch; equal ``pos_text_ids`` also mark in-batch pairs
    of different samples with the same caption, masked in ``mmclip``. Any part may be None (no
    negatives of that kind, no masking by id).
    """

    text: Tensor | None = None
    text_mask: Tensor | None = None
    text_ids: Tensor | None = None
    image: Tensor | None = None
    image_mask: Tensor | None = None
    image_ids: Tensor | None = None
    pos_text_ids: Tensor | None = None
    pos_image_ids: Tensor | None = None


def gather(x: Tensor, world_size: int) -> Tensor:
    """All-gather (B, ...) tensors from every rank into (W·B, ...), keeping gradients
    (``torch.distributed.nn.functional.all_gather``); the identity for one rank."""
    if world_size == 1:
        return x
    import torch.distributed.nn.functional as dist_fn

    with warnings.catch_warnings():
        # torch 2.14 deprecates it for a private module (_functional_collectives); open_clip's
        # ClipLoss still gathers with it, and so do we, without a warning per rank and step.
        warnings.filterwarnings("ignore", r"torch\.distributed\.nn\.functional\.all_gather", FutureWarning)
        return torch.cat(dist_fn.all_gather(x), dim=0)


def _check_shapes(image: Tensor, text: Tensor, neg: Negatives) -> None:
    """Raise ValueError unless image/text are (B, D), negatives (B, K, D) with (B, K) masks
    and ids, and positive ids (B,). (A mismatched mask would otherwise broadcast silently.)"""
    if image.shape != text.shape or image.dim() != 2:
        raise ValueError(
            f"image and text features must both be (B, D); got {tuple(image.shape)} and {tuple(text.shape)}"
        )
    b, d = image.shape
    for kind, feats, mask, ids in (
        ("text", neg.text, neg.text_mask, neg.text_ids),
        ("image", neg.image, neg.image_mask, neg.image_ids),
    ):
        if feats is None:
            continue
        if feats.dim() != 3 or feats.shape[0] != b or feats.shape[2] != d:
            raise ValueError(f"negatives.{kind} must be (B, K, D) = ({b}, K, {d}); got {tuple(feats.shape)}")
        for part, x in (("mask", mask), ("ids", ids)):
            if x is not None and tuple(x.shape) != tuple(feats.shape[:2]):
                raise ValueError(
                    f"negatives.{kind}_{part} must be {tuple(feats.shape[:2])}; got {tuple(x.shape)}"
                )
    for name, x in (("pos_text_ids", neg.pos_text_ids), ("pos_image_ids", neg.pos_image_ids)):
        if x is not None and tuple(x.shape) != (b,):
            raise ValueError(f"negatives.{name} must be (B,) = ({b},); got {tuple(x.shape)}")


def caption_duplicates(ids: Tensor, ids_all: Tensor, offset: int) -> Tensor:
    """(B, N) bool: True at (b, j) where in-batch candidate j of the gathered batch has the same
    caption id as row b and is another sample (j ≠ ``offset`` + b, row b's own column).

    ``ids``: (B,) int64 caption ids of this rank's rows; ``ids_all``: (N,) int64 ids of the
    gathered batch (N = W·B), in which this rank's rows start at ``offset`` = rank·B."""
    own = torch.arange(len(ids), device=ids.device) + offset
    other = torch.arange(len(ids_all), device=ids.device)[None, :] != own[:, None]
    return (ids[:, None] == ids_all[None, :]) & other


def _zero_masked(extra: Tensor | None, keep: Tensor | None) -> Tensor | None:
    """``extra`` with masked negatives replaced by zeros, so that padding holding NaN/inf cannot
    leak into the loss or its gradients (−∞ masking alone still lets 0·NaN into the backward)."""
    if extra is None or keep is None:
        return extra
    return torch.where(keep[:, :, None], extra, torch.zeros((), dtype=extra.dtype, device=extra.device))


def _neg_mask(
    mask: Tensor | None,
    ids: Tensor | None,
    pos_ids_all: Tensor | None,
    shape: tuple[int, ...],
    device: torch.device,
) -> Tensor:
    """(B, K) bool: True for a usable negative: valid, and not a duplicate of an in-batch
    candidate or of an earlier negative of the same sample."""
    keep = torch.ones(shape, dtype=torch.bool, device=device) if mask is None else mask.bool().clone()
    if ids is not None:
        if pos_ids_all is not None:
            keep &= ~(ids[:, :, None] == pos_ids_all[None, None, :]).any(dim=2)
        same = ids[:, :, None] == ids[:, None, :]
        earlier = torch.tril(torch.ones(shape[1], shape[1], dtype=torch.bool, device=device), diagonal=-1)
        keep &= ~(same & earlier[None] & keep[:, None, :]).any(dim=2)
    return keep


def _append(
    logits: Tensor, anchor: Tensor, extra: Tensor | None, keep: Tensor | None, scale: Tensor
) -> Tensor:
    """``logits`` (B, C) with ``scale · anchor_b · extra_bᵀ`` (B, K) appended; masked → −∞."""
    if extra is None or extra.shape[1] == 0:
        return logits
    more = scale * torch.einsum("bd,bkd->bk", anchor, extra)
    if keep is not None:
        more = more.masked_fill(~keep, float("-inf"))
    return torch.cat([logits, more], dim=1)


class HardNegativeClipLoss(nn.Module):
    """CLIP loss with per-sample hard negatives; see the module docstring for the equations.

    ``kind`` is one of :data:`LOSSES`. ``rank``/``world_size`` describe the process group
    (gathering uses ``torch.distributed``). ``forward(image, text, scale, negatives=None,
    bias=None)`` takes (B, D) L2-normalised features, the exponentiated logit scale (a 0-d
    tensor), optional :class:`Negatives` and, for ``siglip-group``, the logit bias; it returns
    the scalar loss of this rank's rows. Raises ValueError for an unknown ``kind``, mismatched
    shapes, or a group loss without any negatives.

    After each call, ``duplicate_share`` (0-d float32, no gradient) is the share of this rank's
    rows whose caption id recurs elsewhere in the gathered batch (:func:`caption_duplicates`;
    0 without ``pos_text_ids``), whatever ``kind``; only ``mmclip`` has in-batch pairs to mask.
    """

    def __init__(self, kind: str = "mmclip", rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}: expected one of {', '.join(LOSSES)}")
        self.kind, self.rank, self.world_size = kind, rank, world_size
        self._labels: dict[tuple[torch.device, int], Tensor] = {}
        self.duplicate_share = torch.zeros(())

    def labels(self, device: torch.device, n: int) -> Tensor:
        """Targets rank·B + arange(B), cached per device and size (as open_clip does)."""
        key = (device, n)
        if key not in self._labels:
            self._labels[key] = torch.arange(n, device=device) + n * self.rank
        return self._labels[key]

    def forward(
        self,
        image: Tensor,
        text: Tensor,
        scale: Tensor,
        negatives: Negatives | None = None,
        bias: Tensor | None = None,
    ) -> Tensor:
        neg = negatives or Negatives()
        _check_shapes(image, text, neg)
        b = image.shape[0]
        pos_t = gather(neg.pos_text_ids, self.world_size) if neg.pos_text_ids is not None else None
        pos_i = gather(neg.pos_image_ids, self.world_size) if neg.pos_image_ids is not None else None
        keep_t = (
            _neg_mask(neg.text_mask, neg.text_ids, pos_t, tuple(neg.text.shape[:2]), image.device)
            if neg.text is not None
            else None
        )
        keep_i = (
            _neg_mask(neg.image_mask, neg.image_ids, pos_i, tuple(neg.image.shape[:2]), image.device)
            if neg.image is not None
            else None
        )
        dup = None
        if neg.pos_text_ids is not None and pos_t is not None:
            dup = caption_duplicates(neg.pos_text_ids, pos_t, self.rank * b)
        self.duplicate_share = (
            torch.zeros((), device=image.device) if dup is None else dup.any(dim=1).float().mean()
        )
        neg = replace(neg, text=_zero_masked(neg.text, keep_t), image=_zero_masked(neg.image, keep_i))
        if self.kind == "mmclip":
            all_image, all_text = gather(image, self.world_size), gather(text, self.world_size)
            i2t, t2i = scale * image @ all_text.T, scale * text @ all_image.T
            if dup is not None:  # row b, column j: caption j is caption b, in both halves
                i2t, t2i = i2t.masked_fill(dup, float("-inf")), t2i.masked_fill(dup, float("-inf"))
            i2t = _append(i2t, image, neg.text, keep_t, scale)
            t2i = _append(t2i, text, neg.image, keep_i, scale)
            labels = self.labels(image.device, b)
            return (F.cross_entropy(i2t, labels) + F.cross_entropy(t2i, labels)) / 2
        return self._group(image, text, scale, neg, keep_t, keep_i, bias)

    def _group(
        self,
        image: Tensor,
        text: Tensor,
        scale: Tensor,
        neg: Negatives,
        keep_t: Tensor | None,
        keep_i: Tensor | None,
        bias: Tensor | None,
    ) -> Tensor:
        """MMGeoLM's group-only losses: positive in column 0, the sample's negatives after it."""
        pos = (image * text).sum(dim=1, keepdim=True)
        terms = []
        for anchor, extra, keep in ((image, neg.text, keep_t), (text, neg.image, keep_i)):
            if extra is None or extra.shape[1] == 0:
                continue
            group = torch.cat([pos, torch.einsum("bd,bkd->bk", anchor, extra)], dim=1) * scale
            valid = torch.cat([torch.ones_like(pos, dtype=torch.bool), keep], dim=1)  # type: ignore[list-item]
            if self.kind == "paper-group":
                group = group.masked_fill(~valid, float("-inf"))
                terms.append(
                    F.cross_entropy(group, torch.zeros(len(group), dtype=torch.long, device=group.device))
                )
            else:
                logits = group + (bias if bias is not None else 0.0)
                target = torch.zeros_like(logits)
                target[:, 0] = 1.0
                each = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
                each = torch.where(valid, each, torch.zeros((), dtype=each.dtype, device=each.device))
                terms.append((each.sum(dim=1) / valid.sum(dim=1)).mean())
        if not terms:
            raise ValueError(f"loss {self.kind!r} needs caption or image negatives; the batch has none")
        return sum(terms) / len(terms)  # type: ignore[return-value]
