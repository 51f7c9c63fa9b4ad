"""The strip of image negatives (``KEY.negatives.png``): write time, read time and bytes of each
way to encode it, on the strips of a real corpus.

Reads every strip of CORPUS, decodes it once to its pixels, then for each encoder (Pillow's
``optimize=True``, which geoforge used before 2026-12-06; Pillow's default; geoforge's
``encode_png`` at several zlib levels) encodes all strips and decodes them again, as a training
loader does (``PIL.Image.open(...).convert("L")`` to a uint8 array). Every encoder is checked to
give back the same pixels. Decoding is timed after a warm-up pass and interleaved over
``--rounds`` (the medians are printed): the first large allocations of a process are slower
than those of a loader worker that has run for a while, and this machine's load swings.

    .venv/bin/python benchmarks/strip_png.py CORPUS [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoforge.render.draw import encode_png  # noqa: E402


def strips(corpus: Path) -> list[np.ndarray]:
    """The pixels of every ``negatives.png`` member of ``corpus``'s shards, (H, W) uint8."""
    out = []
    for shard in sorted(corpus.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".negatives.png"):
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    out.append(np.asarray(Image.open(io.BytesIO(data)).convert("L")))
    return out


def _pillow(optimize: bool) -> Callable[[np.ndarray], bytes]:
    def encode(pixels: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", optimize=optimize)
        return buffer.getvalue()

    return encode


ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "pillow optimize=True": _pillow(True),
    "pillow default": _pillow(False),
    **{f"encode_png level {k}": (lambda p, k=k: encode_png(p, k)) for k in (3, 4, 6, 9)},
}


def _decode_ms(blobs: list[bytes]) -> float:
    start = time.perf_counter()
    for blob in blobs:
        np.asarray(Image.open(io.BytesIO(blob)).convert("L"))
    return 1000 * (time.perf_counter() - start) / len(blobs)


def measure(pixels: list[np.ndarray], rounds: int) -> dict[str, dict[str, float]]:
    """ms to write and to read a strip, and its bytes, per encoder (medians over rounds)."""
    encoded, write = {}, {}
    for name, encode in ENCODERS.items():
        start = time.perf_counter()
        encoded[name] = [encode(p) for p in pixels]
        write[name] = 1000 * (time.perf_counter() - start) / len(pixels)
        back = [np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in encoded[name]]
        if not all(np.array_equal(a, b) for a, b in zip(back, pixels, strict=True)):
            raise SystemExit(f"{name}: the decoded pixels differ")
    read: dict[str, list[float]] = {name: [] for name in ENCODERS}
    for _ in range(rounds):
        for name, blobs in encoded.items():
            read[name].append(_decode_ms(blobs))
    return {
        name: {
            "write_ms": round(write[name], 2),
            "read_ms": round(statistics.median(read[name]), 2),
            "bytes": sum(map(len, encoded[name])) // len(pixels),
        }
        for name in ENCODERS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pixels = strips(args.corpus)
    if not pixels:
        raise SystemExit(f"{args.corpus}: no negatives.png members (a corpus made with --image-negatives)")
    for blob in [encode_png(p) for p in pixels]:  # warm-up: the allocator settles
        np.asarray(Image.open(io.BytesIO(blob)).convert("L"))
    result = measure(pixels, args.rounds)
    if args.json:
        print(json.dumps({"strips": len(pixels), "encoders": result}, indent=1))
        return
    print(f"{len(pixels)} strips of {args.corpus}, {pixels[0].shape[1]}×{pixels[0].shape[0]} px")
    for name, row in result.items():
        write, read = row["write_ms"], row["read_ms"]
        print(f"{name:22s} write {write:7.2f} ms  read {read:5.2f} ms  {row['bytes']:>7} bytes")


if __name__ == "__main__":
    main()
