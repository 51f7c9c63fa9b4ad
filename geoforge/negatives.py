"""Hard negatives for one positive: run the perturbations, verify every candidate, keep the
first that pass.

Image perturbations take turns (round robin in the configured order) until ``image``
negatives are accepted or the candidates run out; caption perturbations likewise for
``caption`` negatives, and the retrieval perturbations for ``retrieval`` negatives. Every
candidate goes through :mod:`geoforge.verify`; every rejection is counted by plugin and
reason.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from geoforge.caption import Caption, Claim, read_caption
from geoforge.perturb import (
    Accepted,
    CaptionCandidate,
    ImageCandidate,
    Perturbation,
    PoolEntry,
    Positive,
    Rejected,
)
from geoforge.plugins import PluginHost, PluginSpec
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.verify import DEFAULT_MARGINS, Margins, claim_key, verify_caption, verify_image
from geoforge.verify.image import Distinct, reference

if TYPE_CHECKING:
    from geoforge.generate import Sample
    from geoforge.render.layout import Layout

#: Default order of the built-in perturbations; other plugins follow by name.
DEFAULT_ORDER = ("move_vertex", "alter_relation", "delete_point", "caption_rules", "retrieval")


@dataclass(frozen=True)
class NegativeConfig:
    """How many negatives of each kind to keep per positive, the margins, the plugin order,
    which caption perturbations count as retrieval, a cap on candidates verified per
    kind (each image candidate costs a realisation and a render), and ``time_budget``: the
    wall-clock seconds each perturbation may spend proposing for one positive (``None``: no
    limit; see :meth:`geoforge.plugins.PluginHost.candidates`).

    ``retrieval_pool``: the path of a corpus-wide retrieval index
    (:func:`geoforge.retrieval.build_index`); when set, each positive's pool is its
    ``retrieval_candidates`` nearest captions of the whole corpus by BM25
    (:meth:`geoforge.retrieval.PoolIndex.pool`) instead of the other samples of its shard.
    ``None`` (the default): the shard's samples, as given to :func:`add_negatives`."""

    image: int = 0
    caption: int = 0
    retrieval: int = 0
    margins: Margins = DEFAULT_MARGINS
    order: tuple[str, ...] = DEFAULT_ORDER
    retrieval_plugins: tuple[str, ...] = ("retrieval",)
    max_checks: int = 80
    time_budget: float | None = 10.0
    retrieval_pool: str | None = None
    retrieval_candidates: int = 64

    @property
    def any(self) -> bool:
        """True if any negatives are asked for."""
        return bool(self.image or self.caption or self.retrieval)


@dataclass
class Negatives:
    """The accepted negatives of one positive and the rejections ``(plugin, reason) → n``."""

    image: list[Accepted] = field(default_factory=list)
    caption: list[Accepted] = field(default_factory=list)
    retrieval: list[Accepted] = field(default_factory=list)
    rejections: Counter[tuple[str, str]] = field(default_factory=Counter)


def _round_robin(streams: list[tuple[str, Iterator]]) -> Iterator[tuple[str, object]]:
    """Interleave several candidate streams, one item from each in turn, pulling each item only
    when it is asked for (no stream is ever drained ahead), so a cap on what the caller takes
    also caps what each stream is asked to produce. A stream ends at its first ``StopIteration``
    (``None`` is an item like any other)."""
    end = object()
    live = list(streams)
    while live:
        for entry in list(live):
            name, it = entry
            item = next(it, end)
            if item is end:
                live.remove(entry)
            else:
                yield name, item


def make_negatives(
    positive: Positive,
    positive_png: bytes,
    host: PluginHost,
    config: NegativeConfig,
    rng: np.random.Generator,
    size: int = 448,
    *,
    plan: Layout | None = None,
    encode: bool = True,
) -> Negatives:
    """Propose, verify and keep negatives for ``positive`` per ``config``. Deterministic given
    ``rng``'s state and the loaded plugins; plugin failures are counted by ``host``. Image
    negatives carry their render (``Accepted.grey``) and, with ``encode``, their PNG bytes
    (see :func:`geoforge.verify.verify_image`).

    Candidates are pulled lazily, one at a time in round robin, and at most
    ``config.max_checks`` per kind are pulled and verified, so an endless generator stops at
    the cap. A :class:`~geoforge.perturb.Rejected` item is counted under its plugin and reason
    and uses up a check. Each perturbation gets a read-only copy of ``positive``, its own generator
    (:func:`geoforge.plugins.plugin_rng` of one draw from ``rng`` and its name, so one plugin's
    randomness, failure or absence never changes another's candidates) and
    ``config.time_budget`` seconds of its own code per positive. The verifier always judges
    against ``positive`` itself, which no plugin sees. ``plan``: the layout ``positive_png``
    was drawn from, when the caller has it (else the verifier lays the positive out again).

    A verified negative is rejected as a duplicate when a kept one has its program (up to
    renaming) or its caption's claims, and an image negative also when its render is not
    visibly different from a kept one's (:class:`geoforge.verify.image.Distinct`): each kept
    negative shows the model something the others do not.
    """
    from geoforge.plugins import plugin_rng

    out = Negatives()
    root = int(rng.integers(2**63))

    serving = makers(config, host)
    distinct = (  # the kept image negatives' renders (the reference is the verifier's, cached)
        Distinct(reference(positive, positive_png, size, plan).grey, config.margins.pixel_diff)
        if config.image
        else None
    )
    plans = [
        (config.image, out.image, serving["image"]),
        (config.caption, out.caption, serving["caption"]),
        (config.retrieval, out.retrieval, serving["retrieval"]),
    ]
    for want, kept, chosen in plans:
        if not want:
            continue
        kind_streams = [
            (p.name, host.candidates(p, positive, plugin_rng(root, p.name), config.time_budget))
            for p in chosen
        ]
        stream = _round_robin(kind_streams)
        try:
            checks = 0
            while len(kept) < want and checks < config.max_checks:
                pulled = next(stream, None)
                if pulled is None:
                    break
                checks += 1
                name, candidate = pulled
                if isinstance(candidate, Rejected):  # the plugin's own verdict on its proposal
                    out.rejections[(name, candidate.reason)] += 1
                    continue
                start = time.perf_counter()
                if isinstance(candidate, ImageCandidate):
                    verdict = verify_image(
                        positive, candidate, positive_png, name, config.margins, size, plan, encode=encode
                    )
                else:
                    assert isinstance(candidate, CaptionCandidate)
                    verdict = verify_caption(positive, candidate, name, config.margins)
                host.seconds[f"{name}: verify"] += time.perf_counter() - start
                accepted = verdict.accepted
                if verdict.ok and accepted is not None:
                    grey = accepted.grey
                    if _duplicate(accepted, kept):
                        out.rejections[(name, "duplicate of a kept negative")] += 1
                    elif grey is not None and distinct is not None and distinct.seen(grey):
                        out.rejections[(name, "not visibly different from a kept negative")] += 1
                    else:
                        kept.append(accepted)
                else:
                    out.rejections[(name, verdict.reason)] += 1
        finally:  # stop every plugin's generator now (its clean-up runs on its own budget)
            stream.close()  # type: ignore[attr-defined]
            for _, it in kind_streams:
                it.close()  # type: ignore[attr-defined]
    return out


def _duplicate(new: Accepted, kept: list[Accepted]) -> bool:
    """True if ``new`` is an image negative with the program of a kept one, or a caption
    negative whose text states the claims of a kept one (up to each kind's symmetries)."""
    c = new.candidate
    if isinstance(c, ImageCandidate):
        return any(
            isinstance(k.candidate, ImageCandidate) and k.candidate.program.same_canonical(c.program)
            for k in kept
        )

    keys = _stated(new.text)
    return any(_stated(k.text) == keys for k in kept)


@lru_cache(maxsize=8192)
def _stated(text: str) -> frozenset[tuple[str, ...]]:
    """The claims a caption text states, each as its :func:`geoforge.verify.claim_key` (cached:
    each new caption negative is compared with every kept one)."""
    return frozenset(claim_key(x) for x in read_caption(text).claims)


_HOSTS: dict[PluginSpec, PluginHost] = {}


#: The command-line option that asks for each kind of negative.
OPTIONS = {
    "image": "--image-negatives",
    "caption": "--caption-negatives",
    "retrieval": "--retrieval-negatives",
}


def makers(config: NegativeConfig, host: PluginHost) -> dict[str, list[Perturbation]]:
    """The perturbations that make each kind of negative (``image``, ``caption``, ``retrieval``),
    in the order they take turns: image perturbations; caption perturbations other than
    ``config.retrieval_plugins``; those."""
    captions = host.ordered("caption", config.order)
    return {
        "image": host.ordered("image", config.order),
        "caption": [p for p in captions if p.name not in config.retrieval_plugins],
        "retrieval": [p for p in captions if p.name in config.retrieval_plugins],
    }


def check_kinds(config: NegativeConfig, host: PluginHost) -> None:
    """Raise UsageError naming each kind of negative ``config`` asks for that no perturbation
    loaded by ``host`` makes (image; caption, the retrieval plugins aside; retrieval), instead
    of a corpus with none of them and exit 0."""
    from geoforge.errors import UsageError

    serving = makers(config, host)
    for kind, option in OPTIONS.items():
        want = getattr(config, kind)
        if want and not serving[kind]:
            raise UsageError(
                f"{option} {want}: no active plugin makes {kind} negatives (see `geoforge plugins`; "
                "was it skipped with --no-plugin or did it fail to load?)"
            )


def host_for(spec: PluginSpec) -> PluginHost:
    """The plugin host for ``spec``, loaded once per process (workers reload the same list)."""
    if spec not in _HOSTS:
        _HOSTS[spec] = PluginHost(spec)
    return _HOSTS[spec]


def _claims(raw: list[list[str]]) -> tuple[Claim, ...]:
    return tuple(Claim(c[0], tuple(c[1:])) for c in raw)


def pool_entry(sample: Sample) -> PoolEntry:
    """What retrieval needs of a sample: its key, caption text and claims."""
    caption = sample.meta["caption"]
    return PoolEntry(sample.key, sample.text, _claims(caption["claims"]))  # type: ignore[index]


def _claim_rows(pairs: list[tuple[Claim, float]]) -> list[list[str]]:
    return [[*c.to_json(), f"{v:.3g}"] for c, v in pairs]


def add_negatives(
    sample: Sample,
    pool: tuple[PoolEntry, ...],
    config: NegativeConfig,
    plugins: PluginSpec,
    size: int,
    seed: int,
) -> Sample:
    """``sample`` with its verified hard negatives: image negative ``i`` becomes tile ``i`` of
    the ``negatives.png`` member (``config.image`` tiles in every sample, see
    :func:`geoforge.corpus.pack_negatives`), and ``meta["negatives"]`` records, as a JSON string
    (one Arrow type in every sample), each negative's plugin, changed clause, change and the
    claims it breaks with their violation, plus rejections by plugin and reason and plugin
    failures.

    The positive is re-realised from its stored program and seed (deterministic; the scene
    :func:`geoforge.generate.make_sample` made is used when the sample carries it), and the
    negatives' generator is ``SeedSequence([seed, index, 1])``. ``pool`` is the positive's
    retrieval pool, unless ``config.retrieval_pool`` names a corpus-wide index, which then
    gives it (``pool`` is ignored); raises RetrievalIndexError if that index is missing or bad.
    """
    meta = sample.meta
    if sample.scene is not None:
        scene = sample.scene
        program = scene.program
    else:
        program = parse_program(str(meta["program"]), dialect=str(meta.get("dialect", "alphageometry")))
        scene = realise(program, seed=int(meta["realise_seed"]))  # type: ignore[arg-type]
    cap = meta["caption"]
    claims = _claims(cap["claims"])  # type: ignore[index]
    caption = Caption(
        str(cap["text"]),
        str(cap["style"]),
        list(claims),
        str(cap.get("question", "")),  # type: ignore[union-attr]
    )
    if config.retrieval_pool is not None and config.retrieval:
        from geoforge.retrieval import load_index

        pool = load_index(config.retrieval_pool).pool(sample.key, sample.text, config.retrieval_candidates)
    positive = Positive(sample.key, program, scene, caption, claims, pool)
    host = host_for(plugins)
    before = Counter(host.failures)
    host.take_noted()  # what loading or another positive noted is not this positive's
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(meta["index"]), 1]))  # type: ignore[arg-type]
    # the strip of negatives is packed from the renders: no PNG per negative (6 ms a sample)
    found = make_negatives(positive, sample.png, host, config, rng, size, plan=sample.plan, encode=False)
    noted = host.take_noted()
    record = {
        "image": [
            {
                "tile": i,
                "plugin": a.plugin,
                "clause": a.candidate.clause,  # type: ignore[union-attr]
                "change": a.candidate.change,
                "program": a.candidate.program.text(),  # type: ignore[union-attr]
                "breaks": [c.to_json() for c in a.candidate.breaks],
                "violated": _claim_rows(a.violated),
                "pixel_diff": round(a.pixel_diff, 5),
                "how": a.how,
                "restored": a.restored,
            }
            for i, a in enumerate(found.image)
        ],
        **{
            kind: [
                {
                    "plugin": a.plugin,
                    "change": a.candidate.change,
                    "text": a.text,
                    "claims": [c.to_json() for c in read_caption(a.text).claims],
                    "violated": _claim_rows(a.violated),
                    "how": a.how,
                }
                for a in accepted
            ]
            for kind, accepted in (("caption", found.caption), ("retrieval", found.retrieval))
        },
        "rejections": {f"{p}: {r}": n for (p, r), n in sorted(found.rejections.items())},
        "failures": dict(sorted((host.failures - before).items())),
        "errors": {key: noted[key] for key in sorted(host.failures - before) if key in noted},
    }
    new_meta = {**meta, "negatives": json.dumps(record, sort_keys=True, ensure_ascii=False)}
    from geoforge.generate import Sample

    greys = tuple(a.grey for a in found.image if a.grey is not None)
    return Sample(
        sample.key,
        sample.png,
        sample.text,
        new_meta,
        slots=config.image,
        scene=scene,
        plan=sample.plan,
        greys=greys,
    )
