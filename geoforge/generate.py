"""Making one corpus sample: sample a figure, realise it, caption it, render it.

:func:`make_sample` is a pure function of ``(recipe, seed, index)``: the per-sample generator
is ``numpy.random.default_rng(SeedSequence([seed, index]))``, so any worker process produces
the same bytes for the same index (DESIGN.md, "Corpus on disk").
"""

from __future__ import annotations

import io
import json
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geoforge.caption import STYLES, make_caption
from geoforge.errors import GeoforgeError, RealiseError, UsageError
from geoforge.negatives import NegativeConfig, check_kinds, host_for, pool_entry
from geoforge.perturb import PoolEntry
from geoforge.plugins import PluginSpec
from geoforge.qa import QAConfig, add_qa, qa_counts
from geoforge.realise import realise
from geoforge.render.layout import Layout
from geoforge.sampler import Recipe, sample_spec
from geoforge.scene import Scene

if TYPE_CHECKING:
    from geoforge.backends import Backend, ShardSpec
    from geoforge.corpus import Record
    from geoforge.store import Store

#: A sample as written: its key and its members, ``{ext: bytes}``.
Encoded = tuple[str, dict[str, bytes]]

#: Realisation attempts per figure; a figure that fails is replaced by a new one. Failures
#: here are almost always structural (a foot that lands on a vertex), so more tries rarely help:
#: of the 195 ``mmgeo-4k`` figures (300 samples) whose first attempt failed, 11 realised at the
#: second, 3 at the third, 1 at the fourth and none later, while the 180 failures cost 12% of
#: the positives' time with 6 attempts.
REALISE_TRIES = 3
#: New figures drawn for one sample before the sample fails.
MAX_FIGURES = 60
#: The last entry of a sample's ``draws``: the figure that was kept.
ACCEPTED = "accepted"


class SampleError(GeoforgeError):
    """No valid figure could be made for a sample index (the recipe is too constrained)."""


@dataclass
class Sample:
    """One positive sample as stored: ``key`` (zero-padded index), ``png`` bytes, caption
    ``text`` and the ``meta`` dict written as ``KEY.json``.

    ``meta`` has the same shape in every sample, so Arrow-based readers (Hugging Face
    ``datasets``, which infers a schema from the first 5 samples) read every sample in full:
    no ``null``, no map whose keys vary by sample, and no list that may be empty. So
    ``points`` is a list of ``{"name", "x", "y"}``, ``givens`` the ``given`` statements
    joined by ``"; "`` (``""`` when none), ``draws`` the reason each rejected figure was
    rejected, in order, then ``"accepted"``, and a caption's ``answer`` is text (``""``
    when none; see :meth:`geoforge.caption.Caption.to_json`).
    """

    key: str
    png: bytes
    text: str
    meta: dict[str, object]
    #: Image negatives as PNG bytes, for samples built by hand; :func:`geoforge.negatives.add_negatives` gives
    #: ``greys`` instead.
    negatives: tuple[bytes, ...] = ()
    #: Image negatives the corpus asked for: the tiles of the ``negatives.png`` member (0: none).
    slots: int = 0
    #: The realised positive and the :class:`~geoforge.render.Layout` its ``png`` was drawn
    #: from, for its negatives in the same process (not stored): what
    #: :func:`geoforge.negatives.add_negatives` would otherwise realise and lay out again.
    scene: Scene | None = field(default=None, compare=False, repr=False)
    plan: Layout | None = field(default=None, compare=False, repr=False)
    #: The image negatives as (H, W) uint8 renders, as :func:`geoforge.negatives.add_negatives`
    #: makes them (not stored: :meth:`files` packs them into the strip); ``negatives`` holds
    #: PNG bytes instead for negatives made elsewhere.
    greys: tuple[np.ndarray, ...] = field(default=(), compare=False, repr=False)

    def files(self) -> dict[str, bytes]:
        """The WebDataset members of this sample, by extension, in the order they are written:
        ``json``, ``png``, ``txt``, then, where the corpus asks for image negatives,
        ``negatives.png`` (all of them side by side, :func:`geoforge.corpus.pack_negatives`), so
        every sample has the same members whatever number it got."""
        files = {
            "json": json.dumps(self.meta, sort_keys=True, ensure_ascii=False).encode(),
            "png": self.png,
            "txt": self.text.encode(),
        }
        if self.slots:
            from PIL import Image

            from geoforge.corpus import NEGATIVES, pack_negatives

            with Image.open(io.BytesIO(self.png)) as positive:
                files[NEGATIVES] = pack_negatives(self.greys or self.negatives, self.slots, positive.height)
        return files


def _reason(e: GeoforgeError) -> str:
    """A short rejection reason for counting, e.g. ``unrealisable: nearly coincides``."""
    text = str(e)
    if isinstance(e, RealiseError):
        reason = e.reason
        for marker in (
            "nearly coincides",
            "far outside",
            "near-parallel",
            "does not hold",
            "precondition",
            "misses",
            "behind",
        ):
            if marker in reason:
                return f"unrealisable: {marker}"
        return "unrealisable: other"
    return text.split(":")[-1].strip()[:60]


#: Two points closer than this many font sizes are too close to read apart.
CLOSEST = 0.8


def _closest(xy: np.ndarray) -> float:
    """The smallest distance between two of the points (N, 2); ``inf`` for fewer than two."""
    if len(xy) < 2:
        return math.inf
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def illegible(plan: Layout) -> str | None:
    """Why a rendered figure is hard to read, or ``None``: a label that could not be placed
    free of collisions, or two points closer than :data:`CLOSEST` font sizes (DESIGN.md,
    verification rule 1: "labels legible")."""
    if plan.clashes:
        return "illegible: label collision"
    if _closest(np.array(list(plan.points.values())).reshape(-1, 2)) < CLOSEST * plan.font_px:
        return "illegible: points too close"
    return None


def crowded(scene: Scene, size: int) -> bool:
    """True if two points of ``scene`` are too close (:func:`illegible`) on a ``size``² image
    at any scale :func:`geoforge.render.layout` may choose: checked at the largest
    (:func:`geoforge.render.layout.fitted_scale`) with a relative slack of 1e-9, before the
    labels are placed. A figure it passes may still have points too close after a layout that
    needed a smaller scale."""
    from geoforge.render.layout import FONT_SCALE, fitted_scale

    return _closest(scene.coords) * fitted_scale(scene, size) < CLOSEST * size * FONT_SCALE * (1 - 1e-9)


def make_sample(recipe: Recipe, seed: int, index: int) -> Sample:
    """Make sample ``index`` of the corpus ``(recipe, seed)``.

    Draws figures until one realises and all its claims hold, captions it in a style drawn
    from the recipe, and renders it at ``recipe.image_size`` pixels. Raises SampleError after
    :data:`MAX_FIGURES` figures.
    """
    from geoforge.render import layout
    from geoforge.render.draw import paint

    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    draws: list[str] = []  # why each rejected figure was rejected, in order
    for _ in range(MAX_FIGURES):
        spec = sample_spec(recipe, rng)
        realise_seed = int(rng.integers(2**31))
        try:
            scene = realise(spec.program, seed=realise_seed, max_tries=REALISE_TRIES)
        except GeoforgeError as e:
            draws.append(_reason(e))
            continue
        style = recipe.styles[int(rng.integers(len(recipe.styles)))]
        captions = {}
        dropped = []
        for s in STYLES:
            captions[s], lost = make_caption(scene, spec.claims, s, rng, spec.targets)
            dropped.extend(lost)
        if dropped:
            draws.append("claim does not hold")
            continue
        caption = captions[style]
        meta = {
            "key": f"{index:08d}",
            "index": index,
            "family": spec.family,
            "features": spec.features,
            "program": spec.program.text(),
            "dialect": spec.program.dialect,
            "canonical_hash": spec.program.canonical_hash(),
            "realise_seed": realise_seed,
            "points": [
                {"name": n, "x": round(float(p[0]), 12), "y": round(float(p[1]), 12)}
                for n, p in scene.points.items()
            ],
            "style": style,
            "caption": caption.to_json(),
            "captions": {s: c.to_json() for s, c in captions.items()},
            "facts": [f.text() for f in caption.facts()],
            "givens": "; ".join(st.text() for st in spec.program.statements if st.kind == "given"),
            "draws": [*draws, ACCEPTED],
        }
        if crowded(scene, recipe.image_size):  # before the labels are placed
            draws.append("illegible: points too close")
            continue
        plan = layout(scene, recipe.image_size)
        problem = illegible(plan)
        if problem:
            draws.append(problem)
            continue
        return Sample(f"{index:08d}", paint(plan, "png"), caption.text, meta, scene=scene, plan=plan)
    raise SampleError(
        f"sample {index}: no valid figure in {MAX_FIGURES} draws ({dict(Counter(draws))}); "
        "the recipe's families or difficulty may be too constrained"
    )


@dataclass(frozen=True)
class ShardWork:
    """What every backend runs to make a corpus's samples, as pure functions of indices, so any
    process (a pool worker, a Ray task) makes the same bytes: ``(recipe, seed)``, the
    ``negatives`` asked (``None``: none), the ``plugins`` that make them and the ``qa`` config
    (``None``: no Q&A). Picklable.

    A sample goes through :meth:`positives`, then :meth:`finish` (negatives, Q&A, the members
    as written). With negatives, :meth:`finish` needs the retrieval pool of the whole shard
    (:meth:`pool`), so a shard's positives are all made first (``pooled``).
    """

    recipe: Recipe
    seed: int
    negatives: NegativeConfig | None = None
    plugins: PluginSpec = field(default_factory=PluginSpec)
    qa: QAConfig | None = None

    @property
    def pooled(self) -> bool:
        """True if :meth:`finish` needs the shard's pool: negatives whose retrieval draws from
        the shard, not from a corpus-wide index (``negatives.retrieval_pool``)."""
        return self.negatives is not None and self.negatives.retrieval_pool is None

    def plugin_seconds(self) -> Counter[str]:
        """A copy of this process's seconds per ``"perturbation: propose"`` and ``"perturbation:
        verify"`` (:attr:`geoforge.plugins.PluginHost.seconds`) for these plugins; empty without
        negatives. A job's share is the difference of two copies."""
        return Counter(host_for(self.plugins).seconds) if self.negatives is not None else Counter()

    def captions(self, indices: range) -> list[PoolEntry]:
        """The pool entries (key, caption, claims) of samples ``indices`` without painting them
        (:func:`geoforge.retrieval.captions.sampled_captions`): what a corpus-wide retrieval
        index holds."""
        from geoforge.retrieval.captions import sampled_captions

        return list(sampled_captions(self.recipe, self.seed, indices))

    def positives(self, indices: Iterable[int]) -> list[Sample]:
        """Samples ``indices`` of the corpus (:func:`make_sample`). Raises SampleError."""
        return [make_sample(self.recipe, self.seed, i) for i in indices]

    def pool(self, samples: Iterable[Sample]) -> tuple[PoolEntry, ...]:
        """The retrieval pool of a shard's positives (:func:`geoforge.negatives.pool_entry`)."""
        return tuple(pool_entry(x) for x in samples)

    def finish(self, samples: Iterable[Sample], pool: tuple[PoolEntry, ...] = ()) -> list[Encoded]:
        """Each sample's negatives (drawn against ``pool``) and Q&A, then its members as written:
        ``(key, {ext: bytes})`` (:meth:`Sample.files`)."""
        out = []
        for x in samples:
            if self.negatives is not None:
                from geoforge.negatives import add_negatives

                x = add_negatives(x, pool, self.negatives, self.plugins, self.recipe.image_size, self.seed)
            if self.qa is not None:
                x = add_qa(x, self.qa, self.seed)
            out.append((x.key, x.files()))
        return out

    def make(self, indices: Iterable[int]) -> list[Encoded]:
        """:meth:`positives` then :meth:`finish` (for work that is not ``pooled``)."""
        return self.finish(self.positives(indices))

    def check_kept(self, first: Record, index: int, label: str) -> None:
        """Raise UsageError unless ``first``, the first sample of the complete shard ``label``
        kept by ``--resume``, is sample ``index`` of this corpus byte for byte (negatives and
        Q&A aside), so ``--resume`` never mixes two corpora."""
        remade = self.positives([index])[0]
        stored = {k: v for k, v in first.meta.items() if k not in ("negatives", "qa")}
        pictured = {k: first.files.get(k) for k in ("png", "txt")}
        if (
            first.key != remade.key
            or pictured != {"png": remade.png, "txt": remade.text.encode()}
            or stored != json.loads(remade.files()["json"])
        ):
            raise UsageError(
                f"{label}: made by another recipe, seed or geoforge version than this run; "
                "pass --overwrite to replace the corpus"
            )


def generate_corpus(
    recipe: Recipe,
    out: Path | str,
    *,
    n: int,
    seed: int,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
    negatives: NegativeConfig | None = None,
    plugins: PluginSpec | None = None,
    qa: QAConfig | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    retrieval_pool: str = "shard",
    on_status: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Write ``n`` samples of ``(recipe, seed)`` to the corpus directory ``out``: a local path,
    or any fsspec URL (``s3://``, ``gs://``, ``file://``; :class:`geoforge.store.Store`).

    ``backend`` runs the shards (:mod:`geoforge.backends`): ``"local"``, ``workers`` processes
    on this machine (in-process for 1); ``"ray"``, one Ray task per shard on the cluster at
    ``ray_address`` (or a local Ray instance of ``workers`` CPUs). Every sample's generator
    derives from ``(seed, index)`` and shards are written in index order, so the shards are
    byte-identical for any backend and ``workers``, and ``--resume`` may continue a corpus
    with another backend. ``on_progress(k)`` is called in this process as ``k`` more samples
    are done (for progress bars), including those of kept shards when resuming. Returns the
    manifest (also written to ``out/manifest.json``); it differs between backends only in its
    ``run`` section. Raises UsageError for an output that exists without
    ``resume``/``overwrite``, for a negative ``seed`` or ``n`` < 1, for negatives of a kind no
    loaded plugin makes (:func:`geoforge.negatives.check_kinds`), for a ``resume`` that would change what the
    shards contain (:func:`geoforge.resume.check_resume`) or a kept shard that another recipe or
    seed made (its first sample is remade to check), or for an unknown or uninstalled
    backend; SampleError if a sample cannot be made, OSError if the disk fails; no half shard
    is ever left under a final name.

    With ``negatives``, each shard's positives then get their hard negatives
    (:func:`geoforge.negatives.add_negatives`), from the plugins ``plugins`` selects (each
    worker loads the same list); retrieval draws on the other samples of the same shard, or,
    with ``retrieval_pool="corpus"``, on every positive of the corpus: a first pass indexes
    every positive caption (:func:`geoforge.retrieval.build_index`, into ``out/retrieval``; a
    local ``out`` only, a path or a ``file://`` URL, which every worker reads), then the shards
    are made. Raises
    UsageError for a corpus pool without retrieval negatives or with a URL ``out``.
    With ``qa``, each sample then gets its questions and exact answers, with the image
    negatives that flip them (:func:`geoforge.qa.add_qa`; counts in the manifest's ``qa``).

    The manifest's ``long_captions`` counts captions longer than an open_clip text tower's
    context (:func:`geoforge.tokens.long_captions`); the CLI warns about them.

    A resumed corpus whose shards are all complete is left as it is: its stored manifest is
    returned with ``"nothing_to_do": True`` (not written).

    The run holds the output's lock throughout (:meth:`geoforge.store.Store.lock`): a local
    directory or ``file://`` URL that another run is writing raises OutputBusy (exit 1) before
    anything is read, removed or written; other fsspec URLs are not locked. ``on_status(line)``
    is called before a slow start that shows no progress (Ray starting or joining a cluster).
    """
    from geoforge.backends import plan_shards, run_shards
    from geoforge.card import dataset_card
    from geoforge.corpus import git_sha, prepare_output, write_json
    from geoforge.resume import check_resume
    from geoforge.store import Store

    if seed < 0 or n < 1:
        raise UsageError(f"seed must be ≥ 0 and n ≥ 1, got seed {seed} and n {n}")
    start = time.perf_counter()
    with (
        Store.at(out).lock() as target,
        closing(_backend(backend, workers, ray_address, on_status)) as runner,
    ):
        store = runner.prepare(target)
        _check_pool(retrieval_pool, negatives, store)
        with_negatives = negatives is not None and negatives.any
        spec = plugins or PluginSpec()
        if with_negatives:
            check_kinds(negatives, host_for(spec))  # type: ignore[arg-type]
        keep = prepare_output(store, resume=resume, overwrite=overwrite)
        head = {
            "geoforge_version": _version(),
            "git_sha": git_sha(),
            "recipe": recipe.to_json(),
            "config_hash": recipe.config_hash(),
            "negatives": asdict(negatives) if with_negatives else None,  # type: ignore[arg-type]
            "plugins": [p.to_json() for p in host_for(spec).plugins] if with_negatives else [],
            "seed": seed,
            "samples": n,
            "qa": _qa_manifest(qa, None),
            "retrieval_pool": retrieval_pool,
        }
        plan = plan_shards(n, recipe.shard_size)
        if resume:
            stored = check_resume(store, head, keep, n, recipe.shard_size)
            if stored is not None and stored.get("complete") is True and set(range(len(plan))) <= keep:
                return {**stored, "nothing_to_do": True}  # the manifest keeps the run that made it
        write_json(store, "manifest.json", {**head, "complete": False})
        work = ShardWork(recipe, seed, negatives if with_negatives else None, spec, qa)
        if retrieval_pool == "corpus":  # first pass: index every positive caption
            index = _corpus_index(
                store.path / "retrieval",  # type: ignore[operator]  # local (_check_pool)
                work,
                head,
                plan,
                runner,
            )
            work = replace(work, negatives=replace(negatives, retrieval_pool=str(index)))  # type: ignore[type-var]
        elif overwrite and store.path is not None and (store.path / "retrieval").is_dir():
            shutil.rmtree(store.path / "retrieval")  # a replaced corpus's index
        tally, resumed = run_shards(work, store, n, keep, runner, on_progress)
        write_json(store, "sizes.json", tally.sizes)
        slots = negatives.image if negatives is not None else 0
        counts = tally.counts.to_json(
            asked_negatives(negatives) if negatives is not None and with_negatives else None
        )
        shards = len(tally.sizes)
        card = dataset_card(  # the recipe as this run used it: --n and --seed override the file's
            {**recipe.to_json(), "samples": n, "seed": seed},
            counts,
            tally.examples,
            shards=shards,
            image_negatives=slots,
        )
        store.write_text("README.md", card)
        store.clean_tmp()  # what killed attempts left (a retried Ray task's first try)
        elapsed = time.perf_counter() - start
        manifest = {
            **head,
            "complete": True,
            "shards": shards,
            "shard_bytes": {name: store.size(name) for name in sorted(tally.sizes)},
            "counts": counts,
            "long_captions": tally.long_json(),
            "qa": _qa_manifest(qa, tally.qa_json()),
            "run": {
                **runner.describe(),
                "resumed_shards": resumed,
                "samples_made": tally.made,
                "seconds": round(elapsed, 3),
                "samples_per_second": round(tally.made / elapsed, 2) if elapsed > 0 else None,
                "busy_worker_seconds": round(tally.busy, 3),
                "plugin_seconds": {k: round(v, 3) for k, v in sorted(tally.plugin_seconds.items())},
            },
        }
        write_json(store, "manifest.json", manifest)
        return manifest


def _backend(
    name: str, workers: int, address: str | None, on_status: Callable[[str], None] | None
) -> Backend:
    """:func:`geoforge.backends.make_backend`, saying first (``on_status``) that Ray starts or
    joins its cluster: seconds with no progress to show."""
    from geoforge.backends import make_backend

    if name == "ray" and on_status is not None:
        local = address in (None, "local")
        on_status("starting a local Ray instance…" if local else f"joining the Ray cluster at {address}…")
    return make_backend(name, workers=workers, address=address)


def asked_negatives(negatives: NegativeConfig) -> dict[str, int]:
    """The negatives asked per sample, by kind (:data:`geoforge.corpus.NEGATIVE_KINDS`)."""
    from geoforge.corpus import NEGATIVE_KINDS

    return {kind: int(getattr(negatives, kind)) for kind in NEGATIVE_KINDS}


#: The file in a corpus-wide retrieval index that names the corpus settings it was built for.
INDEX_SOURCE = "corpus.json"


def _corpus_index(
    index: Path, work: ShardWork, head: dict[str, object], shards: list[ShardSpec], runner: Backend
) -> Path:
    """The corpus-wide retrieval index ``index`` of the positives of ``shards``: kept when it
    was built for the same settings (``head`` without the git SHA, in :data:`INDEX_SOURCE`;
    a resumed run), else built by ``runner`` (:func:`geoforge.retrieval.build_index`)."""
    from geoforge.retrieval import build_index

    source = json.dumps({k: v for k, v in head.items() if k != "git_sha"}, sort_keys=True)
    if (index / INDEX_SOURCE).is_file() and (index / INDEX_SOURCE).read_text() == source:
        return index
    build_index(runner.captions(work, shards), index, overwrite=True)
    (index / INDEX_SOURCE).write_text(source)
    return index


def _check_pool(pool: str, negatives: NegativeConfig | None, out: Store) -> None:
    """Raise UsageError unless ``pool`` is ``shard`` or ``corpus``, and a ``corpus`` pool has
    retrieval negatives to draw and a local corpus directory to hold its index."""
    if pool not in ("shard", "corpus"):
        raise UsageError(f"--retrieval-pool {pool}: expected shard or corpus")
    if pool == "corpus" and (negatives is None or not negatives.retrieval):
        raise UsageError("--retrieval-pool corpus draws retrieval negatives: pass --retrieval-negatives N")
    if pool == "corpus" and out.path is None:
        raise UsageError(
            f"--retrieval-pool corpus: the index is a local directory; --out {out} is not one "
            "(a path or a file:// URL)"
        )


def _qa_manifest(qa: QAConfig | None, counts: dict[str, object] | None) -> dict[str, object] | None:
    """The manifest's ``qa`` entry: the config and the totals (``counts``, none yet: zero),
    ``None`` without Q&A."""
    if qa is None:
        return None
    return {"config": asdict(qa), "counts": counts if counts is not None else qa_counts(())}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("geoforge")
    except PackageNotFoundError:
        return "unknown"
