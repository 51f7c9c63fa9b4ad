"""Making one corpus sample: sample a figure, realise it, caption it, render it.

:func:`make_sample` is a pure function of ``(recipe, seed, index)``: the per-sample generator
is ``numpy.random.default_rng(SeedSequence([seed, index]))``, so any worker process produces
the same bytes for the same index (DESIGN.md, "Corpus on disk").
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geoforge.caption import STYLES, make_caption
from geoforge.errors import GeoforgeError, RealiseError, UsageError
from geoforge.negatives import NegativeConfig, check_kinds, host_for, pool_entry
from geoforge.plugins import PluginSpec
from geoforge.qa import QAConfig, qa_chunk, qa_counts
from geoforge.realise import realise
from geoforge.render.layout import Layout
from geoforge.sampler import Recipe, sample_spec
from geoforge.tokens import corpus_captions, long_captions

#: Realisation attempts per figure; a figure that fails is replaced by a new one. Failures
#: here are almost always structural (a foot that lands on a vertex), so more tries rarely help.
REALISE_TRIES = 6
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
    negatives: tuple[bytes, ...] = ()
    #: Image negatives the corpus asked for: the tiles of the ``negatives.png`` member (0: none).
    slots: int = 0

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
                files[NEGATIVES] = pack_negatives(self.negatives, self.slots, positive.height)
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


def illegible(plan: Layout) -> str | None:
    """Why a rendered figure is hard to read, or ``None``: a label that could not be placed
    free of collisions, or two points closer than 0.8 font sizes (DESIGN.md,
    verification rule 1: "labels legible")."""
    if plan.clashes:
        return "illegible: label collision"
    xy = np.array(list(plan.points.values()))
    if len(xy) > 1:
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        if d.min() < 0.8 * plan.font_px:
            return "illegible: points too close"
    return None


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
        plan = layout(scene, recipe.image_size)
        problem = illegible(plan)
        if problem:
            draws.append(problem)
            continue
        return Sample(f"{index:08d}", paint(plan, "png"), caption.text, meta)
    raise SampleError(
        f"sample {index}: no valid figure in {MAX_FIGURES} draws ({dict(Counter(draws))}); "
        "the recipe's families or difficulty may be too constrained"
    )


def _make(args: tuple[Recipe, int, int]) -> Sample:
    recipe, seed, index = args
    return make_sample(recipe, seed, index)


def _with_negatives(args: tuple[list[Sample], tuple, NegativeConfig, PluginSpec, int, int]) -> list[Sample]:
    samples, pool, config, plugins, size, seed = args
    from geoforge.negatives import add_negatives

    return [add_negatives(s, pool, config, plugins, size, seed) for s in samples]


def generate_corpus(
    recipe: Recipe,
    out: Path,
    *,
    n: int,
    seed: int,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    on_sample: Callable[[], None] | None = None,
    negatives: NegativeConfig | None = None,
    plugins: PluginSpec | None = None,
    qa: QAConfig | None = None,
) -> dict[str, object]:
    """Write ``n`` samples of ``(recipe, seed)`` to the corpus directory ``out``.

    Samples are made in ``workers`` processes (in-process for 1) and written in index order,
    so the shards are byte-identical for any ``workers``. ``on_sample`` is called in this
    process after each sample (for progress bars), including those of kept shards when
    resuming. Returns the manifest (also written to ``out/manifest.json``). Raises
    UsageError for an output that exists without ``resume``/``overwrite``, for negatives of a
    kind no loaded plugin makes (:func:`geoforge.negatives.check_kinds`), for a ``resume`` that
    would change what the shards contain (:func:`geoforge.resume.check_resume`) or a kept shard
    that another recipe or seed made (its first sample is remade to check), SampleError if a
    sample cannot be made, OSError if the disk fails; no half shard is ever left under a
    final name.

    With ``negatives``, each shard's positives then get their hard negatives
    (:func:`geoforge.negatives.add_negatives`), from the plugins ``plugins`` selects (each
    worker loads the same list); retrieval draws on the other samples of the same shard.
    With ``qa``, each sample then gets its questions and exact answers, with the image
    negatives that flip them (:func:`geoforge.qa.add_qa`; counts in the manifest's ``qa``).

    The manifest's ``long_captions`` counts captions longer than an open_clip text tower's
    context (:func:`geoforge.tokens.long_captions`); the CLI warns about them.
    """
    from geoforge.card import dataset_card
    from geoforge.corpus import (
        git_sha,
        prepare_output,
        read_shard,
        shard_name,
        summarise,
        write_json,
        write_shard,
    )
    from geoforge.resume import check_resume

    start = time.perf_counter()
    with_negatives = negatives is not None and negatives.any
    if with_negatives:
        check_kinds(negatives, host_for(plugins or PluginSpec()))  # type: ignore[arg-type]
    keep = prepare_output(out, resume=resume, overwrite=overwrite)
    shard_size = recipe.shard_size
    head = {
        "geoforge_version": _version(),
        "git_sha": git_sha(),
        "recipe": recipe.to_json(),
        "config_hash": recipe.config_hash(),
        "negatives": asdict(negatives) if with_negatives else None,  # type: ignore[arg-type]
        "plugins": [p.to_json() for p in host_for(plugins or PluginSpec()).plugins] if with_negatives else [],
        "seed": seed,
        "samples": n,
        "qa": _qa_manifest(qa, ()),
    }
    if resume:
        check_resume(out, head, keep, n, shard_size)
    write_json(out / "manifest.json", {**head, "complete": False})
    n_shards = (n + shard_size - 1) // shard_size
    sizes: dict[str, int] = {}
    made = 0
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for s in range(n_shards):
            lo, hi = s * shard_size, min(n, (s + 1) * shard_size)
            path = out / shard_name(s)
            if s in keep and sum(1 for _ in read_shard(path)) == hi - lo:
                _check_kept(path, recipe, seed, lo)
                sizes[path.name] = hi - lo
                for _ in range(hi - lo):
                    on_sample and on_sample()
                continue
            jobs = [(recipe, seed, i) for i in range(lo, hi)]
            samples: Iterable[Sample] = pool.map(_make, jobs, chunksize=4) if pool else map(_make, jobs)
            if negatives is not None and negatives.any:
                samples = list(samples)
                entries = tuple(pool_entry(x) for x in samples)
                chunks = [samples[k : k + 8] for k in range(0, len(samples), 8)]
                njobs = [
                    (c, entries, negatives, plugins or PluginSpec(), recipe.image_size, seed) for c in chunks
                ]
                done = pool.map(_with_negatives, njobs) if pool else map(_with_negatives, njobs)
                samples = (x for chunk in done for x in chunk)
            if qa is not None:
                samples = list(samples)
                qjobs = [(samples[k : k + 8], qa, seed) for k in range(0, len(samples), 8)]
                asked = pool.map(qa_chunk, qjobs) if pool else map(qa_chunk, qjobs)
                samples = (x for chunk in asked for x in chunk)

            def counted(samples: Iterable[Sample]) -> Iterator[tuple[str, dict[str, bytes]]]:
                for x in samples:
                    on_sample and on_sample()
                    yield x.key, x.files()

            sizes[path.name] = write_shard(path, counted(samples))
            made += hi - lo
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    counts = summarise(r for name in sizes for r in read_shard(out / name))
    long = long_captions(corpus_captions(r for name in sizes for r in read_shard(out / name)))
    examples = [r.files["txt"].decode() for r, _ in zip(read_shard(out / shard_name(0)), range(3))]
    write_json(out / "sizes.json", sizes)
    slots = negatives.image if negatives is not None else 0
    card = dataset_card(recipe.to_json(), counts, examples, shards=len(sizes), image_negatives=slots)
    (out / "README.md").write_text(card, encoding="utf-8")
    elapsed = time.perf_counter() - start
    manifest = {
        **head,
        "complete": True,
        "shards": len(sizes),
        "counts": counts,
        "long_captions": long.to_json(),
        "qa": _qa_manifest(qa, (r.meta for name in sizes for r in read_shard(out / name))),
        "run": {
            "workers": workers,
            "resumed_shards": sorted(
                shard_name(s) for s in keep if shard_name(s) in sizes and s * shard_size < n
            ),
            "samples_made": made,
            "seconds": round(elapsed, 3),
            "samples_per_second": round(made / elapsed, 2) if elapsed > 0 else None,
        },
    }
    write_json(out / "manifest.json", manifest)
    return manifest


def _check_kept(path: Path, recipe: Recipe, seed: int, lo: int) -> None:
    """Raise UsageError unless the first sample of the complete shard ``path`` is sample ``lo``
    of ``(recipe, seed)`` byte for byte, so ``--resume`` never mixes two corpora."""
    from geoforge.corpus import read_shard

    records = read_shard(path)
    first = next(records)
    records.close()
    remade = _make((recipe, seed, lo))
    stored = {k: v for k, v in first.meta.items() if k not in ("negatives", "qa")}
    same = {k: first.files.get(k) for k in ("png", "txt")} == {"png": remade.png, "txt": remade.text.encode()}
    if first.key != remade.key or not same or stored != json.loads(remade.files()["json"]):
        raise UsageError(
            f"{path}: made by another recipe, seed or geoforge version than this run; "
            "pass --overwrite to replace the corpus"
        )


def _qa_manifest(qa: QAConfig | None, metas: Iterable[dict[str, object]]) -> dict[str, object] | None:
    """The manifest's ``qa`` entry: the config and the totals, ``None`` without Q&A."""
    if qa is None:
        return None
    return {"config": asdict(qa), "counts": qa_counts(metas)}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("geoforge")
    except PackageNotFoundError:
        return "unknown"
