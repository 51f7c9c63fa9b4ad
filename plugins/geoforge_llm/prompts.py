"""The prompts: versioned data files (``prompts/v1.toml``) turned into chat messages.

A prompt file holds, for each kind (``image``: edit the diagram program; ``caption``: edit the
caption text), a system message and a user template, and one instruction per task of MMGeoLM's
taxonomy (:data:`geoforge_llm.config.TASKS`). Its SHA-256 is the prompt hash that goes into
the corpus manifest and, through the request, into the cache key.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass
from importlib import resources

from geoforge.perturb import Positive

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The prompt file a run uses; a changed prompt is a new file, never an edit of a released one.
VERSION = "v1"


@dataclass(frozen=True)
class Prompts:
    """One prompt file: its ``version`` (file stem), ``sha256`` (hex, of the file's bytes) and
    parsed ``data``."""

    version: str
    sha256: str
    data: dict[str, dict[str, object]]

    @property
    def hash(self) -> str:
        """The first 16 hex digits of :attr:`sha256`, as recorded in manifests."""
        return self.sha256[:16]

    def messages(
        self, kind: str, positive: Positive, task: str, variant: int, allow_swap: bool
    ) -> list[dict]:
        """The chat messages asking for one edit of ``kind`` (``image`` or ``caption``) to
        ``positive`` by ``task`` (a key of the file's ``[tasks.<kind>]``); ``variant`` > 0 asks
        for a different change than the obvious one, and unless ``allow_swap`` the user message
        forbids a parallel↔perpendicular swap. Raises KeyError for an unknown kind or task."""
        template = self.data[kind]
        text = self.data["text"]
        fill = {
            "constructions": constructions_table(),
            "program": positive.program.text(),
            "caption": positive.caption.text,
            "facts": "; ".join(f.text() for c in positive.caption.claims for f in c.facts()),
            "instruction": self.data["tasks"][kind][task],  # type: ignore[index]
            "variant": str(text["variant"]).format(n=variant + 1) if variant else "",
            "constraint": "" if allow_swap else str(text["no_swap"]),
        }
        return [
            {"role": "system", "content": str(template["system"]).format(**fill)},
            {"role": "user", "content": str(template["user"]).format(**fill)},
        ]


@functools.lru_cache(maxsize=4)
def load_prompts(version: str = VERSION) -> Prompts:
    """The prompt file ``prompts/<version>.toml`` shipped in this package. Raises
    FileNotFoundError for an unknown version."""
    raw = resources.files("geoforge_llm").joinpath("prompts", f"{version}.toml").read_bytes()
    return Prompts(version, hashlib.sha256(raw).hexdigest(), tomllib.loads(raw.decode("utf-8")))


def constructions_table() -> str:
    """Every registered construction as ``outputs = name params  # doc``, one per line,
    sorted by name (plugins' constructions included)."""
    from geoforge.constructions import REGISTRY

    return "\n".join(
        f"{c.signature}  # {c.doc}" if c.doc else c.signature
        for c in sorted(REGISTRY.values(), key=lambda c: c.name)
    )
