"""Cost of the corpus-wide retrieval index (:mod:`geoforge.retrieval`): build time, query time,
index bytes and peak RSS at several pool sizes, extrapolated per million captions, and the
recall of the approximate (faiss) index against exact BM25.

Captions: ``--captions FILE`` (JSON lines ``[key, text]``, e.g. written by ``--write``), or
``--distinct D`` captions made on the spot with
:func:`geoforge.retrieval.captions.sampled_captions` (``make_sample``'s captions of
``--recipe``/``--seed``, without painting). A pool of N > D captions repeats the D distinct
captions in order under distinct keys; the report says so. Each size and mode is measured in a
fresh process (``multiprocessing`` spawn), so its peak RSS (``ru_maxrss``) is its own; the RSS
of the process after its imports is reported too. Queries run in another fresh process, which
reports its RSS growth (memory-mapped index pages included: shared by every worker) and its
anonymous memory growth (each worker's own). Recall@n is measured on the distinct captions
only (repeats would make ties): for each of ``--queries`` captions, the share of the
approximate pool's n whose exact BM25 score reaches the exact n-th best score.

    .venv/bin/python benchmarks/retrieval_index.py --distinct 20000 --write /tmp/captions.jsonl
    .venv/bin/python benchmarks/retrieval_index.py --captions /tmp/captions.jsonl \\
        --sizes 10000 100000 300000 [--queries 200] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from geoforge.perturb import PoolEntry

ROOT = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _now_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _anonymous_mib() -> float:
    """This process's anonymous memory (heap, not file-backed), from /proc/self/smaps_rollup:
    what each worker holds of its own, where the memory-mapped index is shared."""
    with open("/proc/self/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Anonymous:")) / 1024


def read_captions(path: Path) -> list[PoolEntry]:
    """The captions of a JSON-lines ``[key, text]`` file, in order, with their claims read back
    from their text (as a corpus stores them)."""
    from geoforge.caption import read_caption

    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [PoolEntry(k, t, tuple(read_caption(t).claims)) for k, t in rows]


def pool(captions: list[PoolEntry], n: int) -> Iterator[PoolEntry]:
    """``n`` entries: the distinct ``captions`` repeated in order, keys ``00000000``, ``00000001``..."""
    for i, e in zip(range(n), itertools.cycle(captions)):
        yield PoolEntry(f"{i:08d}", e.text, e.claims)


def measure_build(captions: Path, n: int, approximate: bool, out: Path) -> dict[str, object]:
    """Build an index of ``n`` captions (exact or approximate) under ``out``; run in a fresh
    process, so ``peak_rss_build_mib`` is the build's."""
    from geoforge.retrieval import build_index

    texts = read_captions(captions)
    base = _now_rss_mib()
    start = time.perf_counter()
    path = build_index(pool(texts, n), out, approximate_above=0 if approximate else n)
    return {
        "captions": n,
        "mode": "approximate" if approximate else "exact",
        "build_s": time.perf_counter() - start,
        "rss_after_imports_mib": base,
        "peak_rss_build_mib": _rss_mib(),
        "index_bytes": sum(f.stat().st_size for f in path.iterdir()),
        "files": {f.name: f.stat().st_size for f in sorted(path.iterdir())},
    }


def measure_query(out: Path, queries: int) -> dict[str, float]:
    """Load the index at ``out`` and ask it for 64-caption pools of ``queries`` of its captions
    (evenly spread); run in a fresh process. The RSS counts the memory-mapped index pages it
    touched (shared by every worker process); the anonymous memory is this process's own."""
    from geoforge.retrieval import load_index

    base, anonymous = _now_rss_mib(), _anonymous_mib()
    start = time.perf_counter()
    index = load_index(out)
    load_s = time.perf_counter() - start
    asked = [index.entry(i) for i in range(0, len(index), max(1, len(index) // queries))][:queries]
    start = time.perf_counter()
    for e in asked:
        index.pool(e.key, e.text, 64)
    return {
        "load_s": load_s,
        "query_ms": 1e3 * (time.perf_counter() - start) / len(asked),
        "rss_after_queries_mib": _now_rss_mib() - base,
        "anonymous_after_queries_mib": _anonymous_mib() - anonymous,
    }


def recall(
    captions: Path, n_queries: int, ns: tuple[int, ...], nprobes: tuple[int, ...], out: Path
) -> list[dict]:
    """Recall@n of the approximate pool against exact BM25 over the distinct captions."""
    import numpy as np

    from geoforge.retrieval import build_index, load_index
    from geoforge.retrieval.index import RERANK, _top

    texts = read_captions(captions)
    index = load_index(build_index(pool(texts, len(texts)), out, approximate_above=0))
    step = max(1, len(texts) // n_queries)
    rows = []
    for nprobe in nprobes:
        index.ivf.nprobe = nprobe
        for n in ns:
            got = []
            for i in range(0, len(texts), step)[:n_queries]:
                scores = index.postings.scores(texts[i].text)
                exact = [int(j) for j in _top(scores, n + 1) if j != i][:n]
                approx = [int(j) for j in index.ranked(texts[i].text, RERANK * (n + 1)) if j != i][:n]
                cut = scores[exact[-1]]
                got.append(sum(scores[j] >= cut for j in approx) / n)
            rows.append({"captions": len(texts), "n": n, "nprobe": nprobe, "recall": float(np.mean(got))})
    return rows


def _child(job: tuple) -> object:
    fn, *args = job
    return fn(*args)


def _fresh(*job: object) -> object:
    with mp.get_context("spawn").Pool(1) as p:
        return p.apply(_child, (job,))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=Path, help="JSON lines [key, text] (see --write)")
    ap.add_argument("--distinct", type=int, default=20000, help="captions to sample when no --captions")
    ap.add_argument("--recipe", default=str(ROOT / "corpora/mmgeo-4k.toml"))
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--write", type=Path, help="write the sampled captions here and stop")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--recall-n", type=int, nargs="+", default=[10, 64])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 141])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    captions = args.captions
    if captions is None or args.write:
        from geoforge.retrieval.captions import sampled_captions
        from geoforge.sampler import load_recipe

        captions = args.write or Path(tempfile.mkdtemp()) / "captions.jsonl"
        with open(captions, "w", encoding="utf-8") as f:
            for e in sampled_captions(load_recipe(args.recipe), args.seed, range(args.distinct)):
                f.write(json.dumps([e.key, e.text], ensure_ascii=False) + "\n")
        if args.write:
            return
    with open(captions, encoding="utf-8") as f:
        distinct = sum(1 for _ in f)
    work = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))
    rows = []
    try:
        for n in args.sizes:
            for approximate in (False, True):
                where = work / f"{n}-{approximate}"
                row = _fresh(measure_build, captions, n, approximate, where)
                rows.append({**row, **_fresh(measure_query, where, args.queries)})
                shutil.rmtree(where)
        ns, nprobes = tuple(args.recall_n), tuple(args.nprobe)
        recalls = _fresh(recall, captions, args.queries, ns, nprobes, work / "recall")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"distinct_captions": distinct, "sizes": rows, "recall": recalls}
    report["per_million"] = per_million(rows)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"captions: {distinct} distinct ({captions}); larger pools repeat them under distinct keys")
        show(report)


def show(report: dict) -> None:
    """Print ``report`` as a table, the per-million figures and the recalls."""
    head = ("captions", "mode", "build s", "query ms", "index MiB", "peak RSS", "base", "query RSS", "own")
    print("{:>9} {:>11} {:>8} {:>9} {:>10} {:>13} {:>6} {:>10} {:>8}".format(*head))
    for r in report["sizes"]:
        print(
            f"{r['captions']:>9} {r['mode']:>11} {r['build_s']:>8.1f} {r['query_ms']:>9.2f} "
            f"{r['index_bytes'] / 2**20:>10.1f} {r['peak_rss_build_mib']:>13.0f} "
            f"{r['rss_after_imports_mib']:>6.0f} {r['rss_after_queries_mib']:>10.0f} "
            f"{r['anonymous_after_queries_mib']:>8.0f}"
        )
    for mode, m in report["per_million"].items():
        print(
            f"per million ({mode}, slope between the two largest sizes): build {m['build_s']:.0f} s, "
            f"index {m['index_gib']:.2f} GiB, peak RSS growth {m['peak_rss_gib']:.2f} GiB, "
            f"query {m['query_ms']:.1f} ms"
        )
    for r in report["recall"]:
        print(f"recall@{r['n']} nprobe={r['nprobe']} over {r['captions']} captions: {r['recall']:.4f}")


def per_million(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per-million-caption figures by mode: the slope between the two largest sizes (so the
    fixed cost of the imports drops out) for build time, index bytes and peak RSS, and the query
    time at the largest size scaled linearly (an exact query touches every posting of its words)."""
    out = {}
    for mode in ("exact", "approximate"):
        r = sorted((x for x in rows if x["mode"] == mode), key=lambda x: x["captions"])
        if len(r) < 2:
            continue
        a, b = r[-2], r[-1]
        scale = 1e6 / (b["captions"] - a["captions"])
        out[mode] = {
            "build_s": (b["build_s"] - a["build_s"]) * scale,
            "index_gib": (b["index_bytes"] - a["index_bytes"]) * scale / 2**30,
            "peak_rss_gib": (b["peak_rss_build_mib"] - a["peak_rss_build_mib"]) * scale / 1024,
            "query_ms": b["query_ms"] * (1e6 / b["captions"] if mode == "exact" else 1.0),
        }
    return out


if __name__ == "__main__":
    main()
