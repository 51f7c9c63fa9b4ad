"""The hard-negative contrastive loss of MMCLIP (``geoforge_train.loss``).

Every value here is checked against independent code written in this file: open_clip's
``ClipLoss`` for the no-negatives case, and per-sample loops with an explicit log-softmax (or
log-sigmoid) over each row's candidate set for the hard-negative, group and sigmoid forms
(leaving out the in-batch candidates of other samples with the row's caption). The
distributed test runs two gloo ranks and compares them with one process on the global batch.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from geoforge_train.loss import LOSSES, HardNegativeClipLoss, Negatives  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import Tensor  # noqa: E402

TOL = 1e-6
FAST = settings(deadline=None, max_examples=40)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: intra-op threads only add contention (tens of x on a busy box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- data


def _unit(g: torch.Generator, *shape: int, dtype: torch.dtype = torch.float64) -> Tensor:
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-1)


def random_batch(
    seed: int,
    b: int,
    d: int,
    k: int,
    l: int,
    *,
    masks: bool = True,
    ids: bool = True,
    pos_ids: bool = True,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor, Negatives]:
    """Unit features (B, D), and K caption / L image negatives with ~30% padding and ids drawn
    from a small range, so negatives often repeat a positive's id or an earlier negative's id."""
    g = torch.Generator().manual_seed(seed)
    image, text = _unit(g, b, d, dtype=dtype), _unit(g, b, d, dtype=dtype)
    n_ids = 2 * b + 2
    neg = Negatives(
        text=_unit(g, b, k, d, dtype=dtype),
        text_mask=torch.rand(b, k, generator=g) < 0.7 if masks else None,
        text_ids=torch.randint(0, n_ids, (b, k), generator=g) if ids else None,
        image=_unit(g, b, l, d, dtype=dtype),
        image_mask=torch.rand(b, l, generator=g) < 0.7 if masks else None,
        image_ids=torch.randint(0, n_ids, (b, l), generator=g) if ids else None,
        pos_text_ids=torch.randperm(n_ids, generator=g)[:b] if pos_ids else None,
        pos_image_ids=torch.randperm(n_ids, generator=g)[:b] if pos_ids else None,
    )
    return image, text, neg


def with_grad(image: Tensor, text: Tensor, scale: float, neg: Negatives) -> tuple[list[Tensor], Negatives]:
    """Fresh leaves [image, text, scale, text negatives, image negatives] and the Negatives
    that use them."""
    leaves = [
        image.clone().requires_grad_(),
        text.clone().requires_grad_(),
        torch.tensor(scale, dtype=image.dtype, requires_grad=True),
        neg.text.clone().requires_grad_(),
        neg.image.clone().requires_grad_(),
    ]
    return leaves, replace(neg, text=leaves[3], image=leaves[4])


def grads(loss: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    return list(torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True))


def assert_close(actual: Tensor, expected: Tensor, tol: float = TOL) -> None:
    torch.testing.assert_close(actual, expected, atol=tol, rtol=0)


# --------------------------------------------------------------------------- references


def kept_negatives(
    mask: Tensor | None, ids: Tensor | None, pos_ids: Tensor | None, i: int, k: int
) -> list[int]:
    """Indices of sample i's usable negatives, in order: not padding, and (when ids are given)
    not the id of any in-batch positive nor of an earlier usable negative of the same sample."""
    seen = set(pos_ids.tolist()) if ids is not None and pos_ids is not None else set()
    out = []
    for j in range(k):
        if mask is not None and not bool(mask[i, j]):
            continue
        if ids is not None:
            if int(ids[i, j]) in seen:
                continue
            seen.add(int(ids[i, j]))
        out.append(j)
    return out


def log_softmax_at(row: list[Tensor], target: int) -> Tensor:
    """log softmax(row)[target], written out: x_t − m − log Σ exp(x − m)."""
    x = torch.stack(row)
    m = x.max().detach()
    return x[target] - m - torch.log(torch.exp(x - m).sum())


def _directions(image: Tensor, text: Tensor, neg: Negatives) -> list[tuple]:
    """(anchor, in-batch candidates, negatives, mask, ids, positive ids) for i→t and t→i."""
    return [
        (image, text, neg.text, neg.text_mask, neg.text_ids, neg.pos_text_ids),
        (text, image, neg.image, neg.image_mask, neg.image_ids, neg.pos_image_ids),
    ]


def in_batch_columns(caption_ids: Tensor | None, i: int, b: int) -> list[int]:
    """The in-batch candidates of row i, in order: every sample but the others whose caption id
    is row i's (those are not negatives: their caption describes image i too)."""
    if caption_ids is None:
        return list(range(b))
    return [j for j in range(b) if j == i or int(caption_ids[j]) != int(caption_ids[i])]


def reference_mmclip(image: Tensor, text: Tensor, scale: Tensor, neg: Negatives) -> Tensor:
    """½ mean over rows of −log softmax over [the row's in-batch candidates + the row's usable
    negatives], for image→text and text→image."""
    b = len(image)
    total = image.new_zeros(())
    for anchor, cands, feats, mask, ids, pos_ids in _directions(image, text, neg):
        k = 0 if feats is None else feats.shape[1]
        for i in range(b):
            columns = in_batch_columns(neg.pos_text_ids, i, b)
            row = [scale * (anchor[i] * cands[j]).sum() for j in columns]
            row += [scale * (anchor[i] * feats[i, j]).sum() for j in kept_negatives(mask, ids, pos_ids, i, k)]
            total = total - log_softmax_at(row, columns.index(i))
    return total / (2 * b)


def reference_group(
    kind: str, image: Tensor, text: Tensor, scale: Tensor, neg: Negatives, bias: Tensor | None = None
) -> Tensor:
    """MMGeoLM Eq. 2 (``paper-group``): −log softmax over [positive, own usable negatives];
    ``siglip-group``: (−log σ(z⁺) − Σ log σ(−z⁻)) / (1 + #negatives), z = s·x + t. Each is a
    mean over rows, then a mean over the directions that have negatives."""
    b = len(image)
    t = 0.0 if bias is None else bias
    terms = []
    for anchor, _, feats, mask, ids, pos_ids in _directions(image, text, neg):
        if feats is None or feats.shape[1] == 0:
            continue
        total = image.new_zeros(())
        for i in range(b):
            pos = scale * (image[i] * text[i]).sum()
            negs = [
                scale * (anchor[i] * feats[i, j]).sum()
                for j in kept_negatives(mask, ids, pos_ids, i, feats.shape[1])
            ]
            if kind == "paper-group":
                total = total - log_softmax_at([pos, *negs], 0)
            else:
                each = [-F.logsigmoid(pos + t)] + [-F.logsigmoid(-(x + t)) for x in negs]
                total = total + torch.stack(each).sum() / len(each)
        terms.append(total / b)
    return torch.stack(terms).mean()


# --------------------------------------------------------------------------- 1. equals ClipLoss


def _assert_equals_clip_loss(image: Tensor, text: Tensor, scale: float, negatives: Negatives | None) -> None:
    ours_in = [
        image.clone().requires_grad_(),
        text.clone().requires_grad_(),
        torch.tensor(scale, dtype=image.dtype, requires_grad=True),
    ]
    theirs_in = [x.detach().clone().requires_grad_() for x in ours_in]
    ours = HardNegativeClipLoss()(*ours_in, negatives)
    theirs = open_clip.ClipLoss()(*theirs_in)
    assert_close(ours, theirs)
    for g_ours, g_theirs in zip(grads(ours, ours_in), grads(theirs, theirs_in)):
        assert_close(g_ours, g_theirs)


@FAST
@given(
    b=st.integers(1, 8),
    d=st.integers(1, 16),
    scale=st.floats(0.5, 100.0),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_without_negatives_equals_open_clip_clip_loss(
    b: int, d: int, scale: float, seed: int, dtype: torch.dtype
) -> None:
    image, text, _ = random_batch(seed, b, d, 0, 0, dtype=dtype)
    _assert_equals_clip_loss(image, text, scale, None)
    _assert_equals_clip_loss(image, text, scale, Negatives())
    _assert_equals_clip_loss(image, text, scale, Negatives(pos_text_ids=torch.randperm(b) * 7))
    empty = Negatives(text=text.new_zeros(b, 0, d), image=image.new_zeros(b, 0, d))
    _assert_equals_clip_loss(image, text, scale, empty)


@FAST
@given(
    b=st.integers(1, 8),
    d=st.integers(1, 16),
    k=st.integers(1, 4),
    l=st.integers(1, 4),
    scale=st.floats(0.5, 100.0),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_all_negatives_masked_equals_open_clip_clip_loss(
    b: int, d: int, k: int, l: int, scale: float, seed: int, dtype: torch.dtype
) -> None:
    image, text, neg = random_batch(seed, b, d, k, l, dtype=dtype)
    padding = replace(
        neg, text_mask=torch.zeros(b, k, dtype=torch.bool), image_mask=torch.zeros(b, l, dtype=torch.bool)
    )
    _assert_equals_clip_loss(image, text, scale, padding)
    # Every negative repeats the id of an in-batch positive: masked as duplicates.
    duplicates = replace(
        neg,
        text_mask=None,
        image_mask=None,
        text_ids=neg.pos_text_ids[torch.randint(0, b, (b, k))],
        image_ids=neg.pos_image_ids[torch.randint(0, b, (b, l))],
    )
    _assert_equals_clip_loss(image, text, scale, duplicates)


# --------------------------------------------------------------------------- 2. equals the loop


@FAST
@given(
    b=st.integers(1, 6),
    d=st.integers(1, 8),
    k=st.integers(0, 5),
    l=st.integers(0, 5),
    scale=st.floats(0.5, 50.0),
    seed=st.integers(0, 2**31 - 1),
    masks=st.booleans(),
    ids=st.booleans(),
    pos_ids=st.booleans(),
    shared=st.booleans(),
)
def test_mmclip_matches_per_sample_reference_in_value_and_gradients(
    b: int,
    d: int,
    k: int,
    l: int,
    scale: float,
    seed: int,
    masks: bool,
    ids: bool,
    pos_ids: bool,
    shared: bool,
) -> None:
    image, text, neg = random_batch(seed, b, d, k, l, masks=masks, ids=ids, pos_ids=pos_ids)
    if shared and pos_ids:  # captions shared between samples: ids drawn from fewer values than B
        neg.pos_text_ids = torch.randint(
            0, max(1, b // 2), (b,), generator=torch.Generator().manual_seed(seed)
        )
    leaves, neg_g = with_grad(image, text, scale, neg)
    ours = HardNegativeClipLoss()(leaves[0], leaves[1], leaves[2], neg_g)
    ref_leaves, ref_neg = with_grad(image, text, scale, neg)
    ref = reference_mmclip(ref_leaves[0], ref_leaves[1], ref_leaves[2], ref_neg)
    assert_close(ours, ref)
    for g_ours, g_ref in zip(grads(ours, leaves), grads(ref, ref_leaves)):
        assert_close(g_ours, g_ref)


def test_duplicate_ids_are_excluded_once_each() -> None:
    # B=2, K=4. Sample 0: negative 0 repeats positive id 11 (of sample 1), negative 2 repeats
    # negative 1. Sample 1: negative 3 repeats the id of negative 0, which is padding, so it stays.
    image, text, neg = random_batch(0, 2, 3, 4, 0, masks=False, ids=False, pos_ids=False)
    neg = replace(
        neg,
        text_ids=torch.tensor([[11, 20, 20, 30], [31, 40, 41, 31]]),
        text_mask=torch.tensor([[True, True, True, True], [False, True, True, True]]),
        pos_text_ids=torch.tensor([10, 11]),
    )
    # Sample 0 keeps negatives 1 and 3; sample 1 keeps 1, 2 and 3 (31 first appears padded).
    assert kept_negatives(neg.text_mask, neg.text_ids, neg.pos_text_ids, 0, 4) == [1, 3]
    assert kept_negatives(neg.text_mask, neg.text_ids, neg.pos_text_ids, 1, 4) == [1, 2, 3]
    scale = torch.tensor(7.0, dtype=torch.float64)
    explicit = replace(
        neg, text_ids=None, pos_text_ids=None, text_mask=torch.tensor([[0, 1, 0, 1], [0, 1, 1, 1]]).bool()
    )
    assert_close(
        HardNegativeClipLoss()(image, text, scale, neg), HardNegativeClipLoss()(image, text, scale, explicit)
    )


def test_two_samples_with_one_caption_are_not_negatives_of_each_other() -> None:
    """B=4, samples 1 and 3 share a caption: the loss is the reference's, which leaves out
    the pairs (1, 3) and (3, 1) in both halves, and differs from ClipLoss, which keeps them."""
    image, text, neg = random_batch(5, 4, 6, 2, 2)
    neg.pos_text_ids = torch.tensor([20, 21, 22, 21])
    assert in_batch_columns(neg.pos_text_ids, 1, 4) == [0, 1, 2]
    assert in_batch_columns(neg.pos_text_ids, 3, 4) == [0, 2, 3]
    scale = torch.tensor(10.0, dtype=torch.float64)
    loss_fn = HardNegativeClipLoss()
    assert_close(loss_fn(image, text, scale, neg), reference_mmclip(image, text, scale, neg))
    assert loss_fn.duplicate_share.item() == 0.5
    in_batch = Negatives(pos_text_ids=neg.pos_text_ids)
    ours = loss_fn(image, text, scale, in_batch)
    assert_close(ours, reference_mmclip(image, text, scale, in_batch))
    assert abs(ours - open_clip.ClipLoss()(image, text, scale)).item() > 1e-3


@pytest.mark.parametrize("kind", LOSSES)
def test_the_loss_gradient_through_a_duplicate_pairs_logits_is_zero(kind: str) -> None:
    """Two extra feature coordinates put a leaf into exactly one logit product each: ``x`` into
    I₁·T₃ (image→text row 1, column 3; text→image row 3, column 1) and ``y`` into I₃·T₁.
    ∂L/∂x = s·(∂L/∂z_i2t[1,3] + ∂L/∂z_t2i[3,1]), both terms ≥ 0 (softmax probabilities), so
    ∂L/∂x = 0 means both logits get no gradient. With other captions the same pairs are
    negatives and get some."""
    g = torch.Generator().manual_seed(6)
    b, d = 4, 5
    image, text = _unit(g, b, d), _unit(g, b, d)
    onehot = torch.eye(b, dtype=torch.float64)
    results = {}
    for name, ids in (("shared", [30, 31, 32, 31]), ("distinct", [30, 31, 32, 33])):
        x = torch.zeros((), dtype=torch.float64, requires_grad=True)
        y = torch.zeros((), dtype=torch.float64, requires_grad=True)
        img = torch.cat([image, (x * onehot[1])[:, None], (y * onehot[3])[:, None]], dim=1)
        txt = torch.cat([text, onehot[3][:, None], onehot[1][:, None]], dim=1)
        k = 0 if kind == "mmclip" else 1  # the group forms need a negative to run
        extra = torch.cat([_unit(g, b, k, d), image.new_zeros(b, k, 2)], dim=2)  # no x or y in these
        neg = Negatives(text=extra, pos_text_ids=torch.tensor(ids))
        loss = HardNegativeClipLoss(kind)(img, txt, torch.tensor(10.0, dtype=torch.float64), neg)
        results[name] = torch.autograd.grad(loss, [x, y], allow_unused=True, materialize_grads=True)
    assert all(grad.item() == 0.0 for grad in results["shared"])
    if kind == "mmclip":
        assert all(grad.item() > 1e-6 for grad in results["distinct"])


# --------------------------------------------------------------------------- 3. group losses


@FAST
@given(
    kind=st.sampled_from(["paper-group", "siglip-group"]),
    b=st.integers(1, 6),
    d=st.integers(1, 8),
    k=st.integers(0, 4),
    l=st.integers(0, 4),
    scale=st.floats(0.5, 50.0),
    bias=st.one_of(st.none(), st.floats(-10.0, 10.0)),
    seed=st.integers(0, 2**31 - 1),
)
def test_group_losses_match_reference_in_value_and_gradients(
    kind: str, b: int, d: int, k: int, l: int, scale: float, bias: float | None, seed: int
) -> None:
    if k == l == 0:
        k = 1
    image, text, neg = random_batch(seed, b, d, k, l)
    bias_t = None if bias is None else torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    leaves, neg_g = with_grad(image, text, scale, neg)
    ours = HardNegativeClipLoss(kind)(leaves[0], leaves[1], leaves[2], neg_g, bias=bias_t)
    ref_bias = None if bias_t is None else bias_t.detach().clone().requires_grad_()
    ref_leaves, ref_neg = with_grad(image, text, scale, neg)
    ref = reference_group(kind, ref_leaves[0], ref_leaves[1], ref_leaves[2], ref_neg, ref_bias)
    assert_close(ours, ref)
    extra = [] if bias_t is None else [bias_t]
    ref_extra = [] if ref_bias is None else [ref_bias]
    for g_ours, g_ref in zip(grads(ours, leaves + extra), grads(ref, ref_leaves + ref_extra)):
        assert_close(g_ours, g_ref)


def test_paper_group_with_one_negative_is_a_two_way_softmax() -> None:
    # Eq. 2 by hand: image·text = 1, image·negative = 0, scale 2 → loss = log(1 + e^{−2}).
    image = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    neg = Negatives(text=torch.tensor([[[0.0, 1.0]]], dtype=torch.float64))
    loss = HardNegativeClipLoss("paper-group")(
        image, image.clone(), torch.tensor(2.0, dtype=torch.float64), neg
    )
    assert loss.item() == pytest.approx(math.log1p(math.exp(-2.0)), abs=1e-12)


@pytest.mark.parametrize("kind", ["paper-group", "siglip-group"])
@pytest.mark.parametrize(
    "negatives",
    [None, Negatives(), Negatives(text=torch.zeros(2, 0, 3), image=torch.zeros(2, 0, 3))],
    ids=["none", "empty", "zero-width"],
)
def test_group_losses_without_negatives_raise_value_error(kind: str, negatives: Negatives | None) -> None:
    x = F.normalize(torch.randn(2, 3), dim=1)
    with pytest.raises(ValueError, match="negatives"):
        HardNegativeClipLoss(kind)(x, x, torch.tensor(1.0), negatives)


def test_unknown_loss_kind_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown loss 'infonce'"):
        HardNegativeClipLoss("infonce")


def _bad_shapes() -> list[tuple[str, Tensor, Tensor, Negatives]]:
    # Regression: with B=2, D=3, K=4, a (2, 5) or (1, 4) text mask used to broadcast silently
    # (masked_fill widened the logits) and mismatched negatives raised einsum's RuntimeError.
    x = torch.randn(2, 3)
    ok_t = torch.randn(2, 4, 3)
    return [
        ("text batch", x, torch.randn(3, 3), Negatives()),
        ("text dim", x, torch.randn(2, 4), Negatives()),
        ("not 2-d", torch.randn(2, 3, 1), torch.randn(2, 3, 1), Negatives()),
        ("1-d", torch.randn(3), torch.randn(3), Negatives()),
        ("negatives batch", x, x, Negatives(text=torch.randn(3, 4, 3))),
        ("negatives dim", x, x, Negatives(image=torch.randn(2, 4, 2))),
        ("negatives 2-d", x, x, Negatives(text=torch.randn(2, 3))),
        ("mask too wide", x, x, Negatives(text=ok_t, text_mask=torch.ones(2, 5, dtype=torch.bool))),
        ("mask broadcast", x, x, Negatives(text=ok_t, text_mask=torch.ones(1, 4, dtype=torch.bool))),
        ("ids", x, x, Negatives(text=ok_t, text_ids=torch.zeros(2, 3, dtype=torch.long))),
        ("image mask", x, x, Negatives(image=ok_t, image_mask=torch.ones(4, dtype=torch.bool))),
        ("pos ids", x, x, Negatives(text=ok_t, pos_text_ids=torch.arange(3))),
    ]


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize(
    ("case", "image", "text", "negatives"), _bad_shapes(), ids=[c[0] for c in _bad_shapes()]
)
def test_mismatched_shapes_raise_value_error(
    kind: str, case: str, image: Tensor, text: Tensor, negatives: Negatives
) -> None:
    with pytest.raises(ValueError, match=r"must (both )?be"):
        HardNegativeClipLoss(kind)(image, text, torch.tensor(1.0), negatives)


# --------------------------------------------------------------------------- 4. garbage padding


def _masked_entries(neg: Negatives, which: str) -> Tensor:
    feats, mask, ids = (
        (neg.text, neg.text_mask, neg.text_ids)
        if which == "text"
        else (neg.image, neg.image_mask, neg.image_ids)
    )
    pos = neg.pos_text_ids if which == "text" else neg.pos_image_ids
    out = torch.ones(feats.shape[:2], dtype=torch.bool)
    for i in range(feats.shape[0]):
        for j in kept_negatives(mask, ids, pos, i, feats.shape[1]):
            out[i, j] = False
    return out


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("garbage", [1e6, -1e30, float("inf"), float("nan")])
@pytest.mark.parametrize("seed", range(3))
def test_masked_negatives_holding_garbage_change_nothing(kind: str, garbage: float, seed: int) -> None:
    image, text, neg = random_batch(seed, 4, 5, 3, 3)
    masked_t, masked_i = _masked_entries(neg, "text"), _masked_entries(neg, "image")
    assert masked_t.any() and masked_i.any() and not masked_t.all()
    dirty = replace(
        neg,
        text=neg.text.masked_fill(masked_t[:, :, None], garbage),
        image=neg.image.masked_fill(masked_i[:, :, None], garbage),
    )
    bias = torch.tensor(-2.0, dtype=torch.float64)
    results = []
    for n in (neg, dirty):
        leaves, n_g = with_grad(image, text, 10.0, n)
        loss = HardNegativeClipLoss(kind)(leaves[0], leaves[1], leaves[2], n_g, bias=bias)
        results.append((loss, grads(loss, leaves)))
    (clean_loss, clean_grads), (dirty_loss, dirty_grads) = results
    assert torch.isfinite(dirty_loss)
    assert_close(dirty_loss, clean_loss)
    for g_dirty, g_clean in zip(dirty_grads, clean_grads):
        assert torch.isfinite(g_dirty).all()
        assert_close(g_dirty, g_clean)
    assert (dirty_grads[3][masked_t] == 0).all() and (dirty_grads[4][masked_i] == 0).all()


@pytest.mark.parametrize("kind", LOSSES)
def test_one_padded_nan_negative_leaves_loss_and_gradients_finite(kind: str) -> None:
    # Regression, smallest input: B=1, D=2, one padded caption negative of NaN. The −∞ mask kept
    # the forward finite for the softmax forms, but 0·NaN reached the image and scale gradients
    # through the einsum backward, and siglip-group's `bce * valid` made the loss itself NaN.
    image = torch.tensor([[0.6, 0.8]], dtype=torch.float64, requires_grad=True)
    text = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    neg = Negatives(
        text=torch.full((1, 1, 2), float("nan"), dtype=torch.float64), text_mask=torch.tensor([[False]])
    )
    loss = HardNegativeClipLoss(kind)(image, text, scale, neg, bias=torch.tensor(-1.0, dtype=torch.float64))
    assert torch.isfinite(loss)
    assert all(torch.isfinite(g).all() for g in torch.autograd.grad(loss, [image, text, scale]))


# --------------------------------------------------------------------------- 5. behaviour


def test_hard_negative_closer_than_every_in_batch_caption_raises_loss_by_at_least_margin() -> None:
    g = torch.Generator().manual_seed(3)
    b, d, s = 4, 6, 10.0
    image, text = _unit(g, b, d), _unit(g, b, d)
    scale = torch.tensor(s, dtype=torch.float64)
    sims = image[0] @ text.T
    # A caption negative for sample 0 whose cosine with image 0 beats every in-batch caption.
    hard = F.normalize(image[0] + 0.05 * _unit(g, d), dim=0)
    assert hard @ image[0] > sims.max()
    negs = Negatives(
        text=torch.zeros(b, 1, d, dtype=torch.float64), text_mask=torch.zeros(b, 1, dtype=torch.bool)
    )
    negs.text[0, 0], negs.text_mask[0, 0] = hard, True
    before = HardNegativeClipLoss()(image, text, scale, None)
    after = HardNegativeClipLoss()(image, text, scale, negs)
    # Only row 0 of the image→text half changes: Δ = 1/(2B) · log(1 + e^{s·hard} / Σ_j e^{s·sim_j}).
    ratio = torch.exp(s * (hard @ image[0])) / torch.exp(s * sims).sum()
    expected = torch.log1p(ratio) / (2 * b)
    margin = math.log1p(1 / b) / (2 * b)  # ratio > 1/B because the negative beats every term
    assert (after - before).item() >= margin
    assert_close(after - before, expected)


def test_negative_with_the_positive_caption_id_is_masked() -> None:
    g = torch.Generator().manual_seed(4)
    b, d = 3, 5
    image, text = _unit(g, b, d), _unit(g, b, d)
    scale = torch.tensor(5.0, dtype=torch.float64)
    # Each sample's caption "negative" is its own positive caption, under the same id.
    same = Negatives(
        text=text[:, None].clone(),
        text_ids=torch.tensor([[7], [8], [9]]),
        pos_text_ids=torch.tensor([7, 8, 9]),
    )
    plain = HardNegativeClipLoss()(image, text, scale, None)
    assert_close(HardNegativeClipLoss()(image, text, scale, same), plain)
    # Without ids the copy counts as a negative: row i's positive appears twice, which adds
    # log(1 + p_i) to its image→text term, p_i the positive's in-batch softmax probability.
    unmasked = HardNegativeClipLoss()(image, text, scale, replace(same, text_ids=None))
    p = torch.softmax(scale * image @ text.T, dim=1).diagonal()
    assert_close(unmasked - plain, torch.log1p(p).sum() / (2 * b))
    assert (unmasked - plain).item() > 0.01


# --------------------------------------------------------------------------- 6. two ranks


WORLD = 2


def _global_batch() -> tuple[Tensor, Tensor, Negatives]:
    """B=6 (3 per rank), K=3, L=2; a rank-1 sample's negatives repeat rank 0's positive ids, and
    sample 5 (rank 1) has the caption of sample 0 (rank 0), so the masks depend on gathering
    the ids."""
    image, text, neg = random_batch(11, 6, 5, 3, 2, ids=False, pos_ids=False)
    neg.pos_text_ids = torch.tensor([100, 101, 102, 103, 104, 100])
    neg.pos_image_ids = torch.arange(200, 206)
    neg.text_ids = torch.arange(300, 318).reshape(6, 3)
    neg.image_ids = torch.arange(400, 412).reshape(6, 2)
    neg.text_ids[4, 0], neg.text_ids[4, 2] = 101, 313  # rank 0's positive; sample 4's own negative 1
    neg.image_ids[3, 1] = 202
    neg.text_mask[4] = neg.image_mask[3] = True
    return image, text, neg


def _run(
    kind: str, image: Tensor, text: Tensor, neg: Negatives, rank: int, world: int
) -> tuple[float, dict[str, Tensor], float]:
    """The loss, the gradients by leaf name and the loss's ``duplicate_share``."""
    leaves, n_g = with_grad(image, text, 10.0, neg)
    bias = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    loss_fn = HardNegativeClipLoss(kind, rank=rank, world_size=world)
    loss = loss_fn(leaves[0], leaves[1], leaves[2], n_g, bias=bias)
    loss.backward()
    names = ["image", "text", "scale", "text_neg", "image_neg", "bias"]
    grads = {
        n: (x.grad if x.grad is not None else torch.zeros_like(x)) for n, x in zip(names, [*leaves, bias])
    }
    return loss.item(), grads, loss_fn.duplicate_share.item()


def _shard(neg: Negatives, rows: slice) -> Negatives:
    return Negatives(**{f: (None if v is None else v[rows]) for f, v in vars(neg).items()})


def _distributed_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        image, text, neg = _global_batch()
        rows = slice(rank * 3, (rank + 1) * 3)
        out = {kind: _run(kind, image[rows], text[rows], _shard(neg, rows), rank, WORLD) for kind in LOSSES}
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process_on_the_global_batch(tmp_path: Path) -> None:
    """Rank r's loss is the mean over its rows, so mean_r L_r = L (the global mean). all_gather's
    backward sums the gathered slices' gradients over ranks, so rank r's local features get
    Σ_r' ∂L_r'/∂x_r = ∂(W·L)/∂x_r = W·∂L/∂x_r; a rank's own negatives feed only L_r, whence
    ∂L_r/∂n_r = W·∂L/∂n_r too; the replicated scale and bias get ∂L_r/∂s, which sum over ranks to
    W·∂L/∂s. So DDP's average of parameter gradients over ranks is the global-batch gradient."""
    mp.spawn(_distributed_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    image, text, neg = _global_batch()
    for kind in LOSSES:
        loss, grad, share = _run(kind, image, text, neg, 0, 1)
        assert share == pytest.approx(2 / 6)
        assert [r[kind][2] for r in ranks] == pytest.approx([1 / 3, 1 / 3])  # samples 0 and 5
        assert sum(r[kind][0] for r in ranks) / WORLD == pytest.approx(loss, abs=TOL)
        for name in ("image", "text", "text_neg", "image_neg"):
            for r in range(WORLD):
                assert_close(ranks[r][kind][1][name], WORLD * grad[name][r * 3 : (r + 1) * 3])
        for name in ("scale", "bias"):
            assert_close(sum(r[kind][1][name] for r in ranks), WORLD * grad[name])
    # The cross-rank duplicate ids are really masked: unmasking them changes the mmclip loss,
    # and the masked loss is the reference's.
    masked = _run("mmclip", image, text, neg, 0, 1)[0]
    assert masked == pytest.approx(reference_mmclip(image, text, torch.tensor(10.0), neg).item(), abs=TOL)
    assert _run("mmclip", image, text, replace(neg, text_ids=None, image_ids=None), 0, 1)[0] != pytest.approx(
        masked, abs=1e-9
    )
    distinct = replace(neg, pos_text_ids=torch.arange(100, 106))
    assert _run("mmclip", image, text, distinct, 0, 1)[0] != pytest.approx(masked, abs=1e-9)
