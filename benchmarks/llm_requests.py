"""Requests per accepted negative of the ``llm_rewrite`` plugin, and what a cached rerun costs.

Runs ``geoforge generate`` (in subprocesses, as a user would) on a recipe against the loopback
chat-completions server of :mod:`geoforge_llm.loopback`, answered by its rule-based editor
(:func:`geoforge_llm.loopback.editing_reply`: change a number, bend a perpendicular or a
midpoint, remove the last point; change a caption's first number), in two set-ups:

* ``llm only``: the built-in image and rule caption perturbations switched off, so every image
  and caption negative comes from the LLM (or none does);
* ``with built-ins``: the default plugins plus the LLM, which comes last in the round robin.

For each it reports the HTTP requests the server received (retries included), the LLM's
accepted negatives, requests per accepted negative and the rejections by reason; then it runs
the same command again into another directory with the same cache and reports the requests of
that rerun and whether its shards are byte-identical. The editor is a stand-in: a real model
fails in more ways (see the reasons in docs/llm.md), so read the numbers as what the pipeline
costs around an LLM whose edits are sensible, not as an LLM's yield.

    .venv/bin/python benchmarks/llm_requests.py [-n 32] [--recipe corpora/smoke.toml] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from geoforge_llm.loopback import ChatServer, editing_reply

ROOT = Path(__file__).parents[1]
GEOFORGE = Path(sys.executable).with_name("geoforge")
BUILT_INS = ("move_vertex", "alter_relation", "delete_point", "caption_rules")


def run(out: Path, recipe: Path, n: int, url: str, cache: Path, extra: list[str]) -> dict:
    """One ``geoforge generate`` run; returns its manifest. Raises RuntimeError if it fails."""
    cmd = [
        str(GEOFORGE), "generate", str(recipe), "--out", str(out), "--n", str(n), "--json",
        "--image-negatives", "4", "--caption-negatives", "2",
        "--llm-model", "edit-bot", "--llm-base-url", url, "--llm-cache", str(cache), *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOFORGE_")}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout)


def measure(recipe: Path, n: int, extra: list[str], work: Path) -> dict:
    """Requests, accepted LLM negatives and rejections of one set-up, then its cached rerun."""
    cache = work / "cache"
    with ChatServer(editing_reply) as server:
        manifest = run(work / "first", recipe, n, server.url, cache, extra)
        sent = server.count
        run(work / "again", recipe, n, server.url, cache, extra)
        rerun = server.count - sent
    stats = manifest["counts"]["negatives"]
    accepted = {k: v for k, v in stats["accepted"].items() if "llm_rewrite" in k}
    rejected = Counter({k.split(": ", 1)[1]: v for k, v in stats["rejections"].items() if "llm_rewrite" in k})
    shards = sorted(p.name for p in (work / "first").glob("shard-*.tar"))
    same = all((work / "first" / s).read_bytes() == (work / "again" / s).read_bytes() for s in shards)
    kept = sum(accepted.values())
    return {
        "requests": sent,
        "accepted": accepted,
        "requests_per_negative": round(sent / kept, 2) if kept else None,
        "rejections": dict(rejected.most_common()),
        "rerun_requests": rerun,
        "rerun_byte_identical": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=32, help="samples per run")
    parser.add_argument("--recipe", type=Path, default=ROOT / "corpora/smoke.toml")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    setups = {"llm only": [f"--no-plugin={p}" for p in BUILT_INS], "with built-ins": []}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(setups.items()):
            results[name] = measure(args.recipe, args.n, extra, Path(tmp) / str(i))
    if args.json:
        print(json.dumps({"samples": args.n, "recipe": str(args.recipe), "setups": results}, indent=1))
        return
    print(f"{args.n} samples of {args.recipe}, 4 image + 2 caption negatives each, 4 requests per kind")
    for name, r in results.items():
        print(f"\n{name}: {r['requests']} requests, accepted {r['accepted']}, "
              f"{r['requests_per_negative']} requests per accepted negative")  # fmt: skip
        print(f"  rejected: {r['rejections']}")
        same = r["rerun_byte_identical"]
        print(f"  cached rerun: {r['rerun_requests']} requests, byte-identical shards: {same}")


if __name__ == "__main__":
    main()
