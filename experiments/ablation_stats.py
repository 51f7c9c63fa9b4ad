"""Intervals for experiments/ablation.py: a bootstrap over held-out samples combined with the
spread of training seeds.

Every metric of the ablation is a macro average over negative kinds of a ratio of sums over
the N held-out samples, ``m = mean_k (Σ_i num[i, k] / Σ_i den[i, k])`` (:class:`Ratio`):

* hard-negative accuracy: ``num = 1`` when the positive scores above every negative of kind
  ``k``, ``den = 1`` when the sample has a negative of that kind;
* paired accuracy: ``num`` the (positive, negative) pairs the positive wins, ``den`` the pairs;
* chance of the accuracy: ``num = 1 / (n_k + 1)`` for a sample with ``n_k`` negatives of the kind.

A row is trained with S seeds and every model is scored on the same held-out samples. Its 95%
interval (:func:`row_interval`):

1. B bootstrap replicates of the held-out set (multinomial counts, :func:`bootstrap_weights`),
   drawn once and shared by every model, so that rows are compared on the same replicates;
   ``V_boot`` is the variance over replicates of the row's seed mean (Efron & Tibshirani 1993,
   *An Introduction to the Bootstrap*, ch. 6: the bootstrap estimate of a standard error).
2. The seed variance ``σ²`` is pooled over the trained rows (one-way ANOVA within-group mean
   square, ``Σ_r Σ_s (m_rs − m̄_r)² / Σ_r (S_r − 1)``), since three seeds alone estimate a
   variance poorly; ``V_seed = σ² / S``. Measured on one held-out set, the seed spread also holds
   some of the held-out sampling noise, which ``V_boot`` counts too: the interval errs wide.
3. The interval is ``m̄ ± t(0.975, ν) · √(V_boot + V_seed)`` with the Welch–Satterthwaite degrees
   of freedom ``ν = V² / (V_seed² / df_seed)`` (the bootstrap part taken as known; Satterthwaite
   1946, *Biometrics Bulletin* 2(6)), rounded down.

A difference of two rows (:func:`difference_interval`) takes ``V_boot`` from the replicates of
the difference (paired on held-out samples) and ``V_seed = σ² (1/S_x + 1/S_y)`` (seeds of
different rows treated as independent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

#: Bootstrap replicates and the seed of their draw.
REPLICATES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Ratio:
    """A macro ratio metric: ``num`` and ``den`` (N, K) per held-out sample and kind."""

    num: np.ndarray
    den: np.ndarray

    def value(self, weights: np.ndarray | None = None) -> np.ndarray | float:
        """The metric on the held-out set (``weights`` None: a float), or on each bootstrap
        replicate (``weights`` (B, N) sample counts: an array (B,)). A kind that a replicate
        does not draw is left out of that replicate's mean; a replicate that draws no kind is
        NaN, and the intervals leave it out."""
        if weights is None:
            return float(np.mean(self.num.sum(0) / self.den.sum(0)))
        with np.errstate(invalid="ignore", divide="ignore"):
            per_kind = (weights @ self.num) / (weights @ self.den)  # (B, K), NaN: kind not drawn
        drawn = ~np.isnan(per_kind)
        total = np.where(drawn, per_kind, 0.0).sum(1)
        return np.where(drawn.any(1), total / np.maximum(drawn.sum(1), 1), np.nan)


def ratio(records: list[dict[str, object]], direction: str, kinds: list[str], what: str) -> Ratio:
    """The :class:`Ratio` of ``what`` (``accuracy``, ``pairwise`` or ``chance``) for one
    ``direction`` of per-sample records (``geoforge eval mmclip --per-sample``: ``{direction:
    {kind: [s(positive), [s(negative), ...]]}}``), columns in the order of ``kinds``. A sample
    without negatives of a kind counts in no column of it. Raises ValueError for another ``what``."""
    if what not in ("accuracy", "pairwise", "chance"):
        raise ValueError(f"what={what!r}: expected accuracy, pairwise or chance")
    num, den = np.zeros((len(records), len(kinds))), np.zeros((len(records), len(kinds)))
    for i, record in enumerate(records):
        scores = record.get(direction, {})
        for k, kind in enumerate(kinds):
            if kind not in scores:  # type: ignore[operator]
                continue
            pos, negs = scores[kind]  # type: ignore[index]
            if what == "pairwise":
                num[i, k], den[i, k] = sum(pos > s for s in negs), len(negs)
            else:
                num[i, k] = float(pos > max(negs)) if what == "accuracy" else 1 / (len(negs) + 1)
                den[i, k] = 1
    return Ratio(num, den)


def bootstrap_weights(n: int, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(replicates, n) counts: how often each of ``n`` held-out samples is drawn, with
    replacement, in each replicate (each row sums to ``n``)."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=replicates).astype(float)


def t_quantile(df: float, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t with ``floor(df)`` degrees of freedom,
    at most 1000 (infinite df: 1.9623 instead of the normal 1.9600 at 95%, which errs wide by
    0.1%). The CDF is Abramowitz & Stegun 26.7.3–4 (exact for integer df), inverted by
    bisection. Raises ValueError for df < 1."""
    if df < 1:
        raise ValueError(f"df={df}: a t quantile needs at least one degree of freedom")
    nu = int(min(df, 1000))

    def inside(t: float) -> float:  # P(|T| ≤ t)
        theta = math.atan(t / math.sqrt(nu))
        c2 = math.cos(theta) ** 2
        term = total = 1.0 if nu % 2 == 0 else math.cos(theta)
        for j in range(2 if nu % 2 == 0 else 3, nu - 1, 2):
            term *= (j - 1) / j * c2
            total += term
        if nu % 2 == 0:
            return math.sin(theta) * total
        return 2 / math.pi * (theta + (math.sin(theta) * total if nu > 1 else 0.0))

    lo, hi = 0.0, 1e4
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if inside(mid) < level else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval ``[low, high]``; ``df`` the degrees of freedom used,
    ``boot_sd`` and ``seed_sd`` the two parts of the standard error."""

    mean: float
    low: float
    high: float
    df: float
    boot_sd: float
    seed_sd: float

    def contains(self, x: float) -> bool:
        """True if ``x`` lies in the interval."""
        return self.low <= x <= self.high


def pooled_seed_variance(points: dict[str, list[float]]) -> tuple[float, int]:
    """``(σ², df)``: the within-row variance of per-seed values pooled over rows
    (``Σ_r Σ_s (m_rs − m̄_r)² / df``, ``df = Σ_r (S_r − 1)``); ``(0.0, 0)`` with one seed per row."""
    ss = sum(float(np.sum((np.asarray(v) - np.mean(v)) ** 2)) for v in points.values())
    df = sum(len(v) - 1 for v in points.values())
    return (ss / df if df else 0.0), df


def _interval(mean: float, v_boot: float, v_seed: float, df_seed: int) -> Interval:
    v = v_boot + v_seed
    df = v**2 / (v_seed**2 / df_seed) if v_seed > 0 and df_seed else math.inf
    half = t_quantile(df) * math.sqrt(v)
    return Interval(mean, mean - half, mean + half, df, math.sqrt(v_boot), math.sqrt(v_seed))


def row_interval(points: list[float], replicates: list[np.ndarray], seed_var: tuple[float, int]) -> Interval:
    """The interval of a row's seed mean: ``points`` its per-seed values, ``replicates`` their
    (B,) bootstrap values on shared weights, ``seed_var`` from :func:`pooled_seed_variance`
    (``(0.0, 0)`` for a single model: the bootstrap part only). Clipped to [0, 1], the range
    of every metric (the normal approximation can pass it on a small held-out set)."""
    v_boot = float(np.nanvar(np.mean(replicates, axis=0), ddof=1))
    var, df = seed_var
    iv = _interval(float(np.mean(points)), v_boot, var / len(points) if df else 0.0, df)
    return replace(iv, low=max(iv.low, 0.0), high=min(iv.high, 1.0))


def difference_interval(
    x: tuple[list[float], list[np.ndarray]],
    y: tuple[list[float], list[np.ndarray]],
    seed_var: tuple[float, int],
) -> Interval:
    """The interval of ``mean(x) − mean(y)``, each ``(per-seed values, per-seed replicates)`` on
    the same bootstrap weights (paired on held-out samples)."""
    diff = np.mean(x[1], axis=0) - np.mean(y[1], axis=0)
    var, df = seed_var
    v_seed = var * (1 / len(x[0]) + 1 / len(y[0])) if df else 0.0
    return _interval(float(np.mean(x[0]) - np.mean(y[0])), float(np.nanvar(diff, ddof=1)), v_seed, df)
