"""How the ``llm_rewrite`` plugin is configured: environment variables, so that the settings
reach ``geoforge generate``'s worker processes unchanged.

Plugins receive only ``(positive, rng)``, and workers load them again by name, so the plugin
reads its settings from ``GEOFORGE_LLM_*`` variables when it registers. ``geoforge generate
--llm-model ...`` sets them for its own process (and so for its workers) and restores them
when it ends; setting them by hand works the same way. ``GEOFORGE_LLM_MODEL`` turns the
plugin on; without it the plugin registers nothing and a run is exactly what it was without
the plugin. The API key is never one of these variables: ``GEOFORGE_LLM_API_KEY_ENV`` holds the
*name* of the variable that holds it (``OPENAI_API_KEY`` by default).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

PREFIX = "GEOFORGE_LLM_"
BACKENDS = ("openai", "transformers")
#: The instructions of each kind, from MMGeoLM's negative taxonomy (Sun et al. 2025, §3.1 and
#: their `promts.py`). An image relabelling is the positive under a relabelling, which the
#: verifier rejects (DESIGN.md, rule 4), and a caption with an element removed is still true,
#: so each kind has the four that can make a negative.
TASKS = {
    "image": ("shape", "relation", "value", "remove"),
    "caption": ("shape", "relation", "value", "relabel"),
}


class ConfigError(ValueError):
    """A ``GEOFORGE_LLM_*`` variable with a value the plugin cannot use; the message names the
    variable and what it expects."""


@dataclass(frozen=True)
class LLMConfig:
    """The plugin's settings (each field is the variable ``GEOFORGE_LLM_<FIELD>``).

    ``model``: the model an endpoint serves, or a local path for the ``transformers`` backend.
    ``backend``: ``openai`` (any OpenAI-compatible chat-completions endpoint) or
    ``transformers``. ``base_url``: the endpoint (``None``: the ``openai`` client's default).
    ``api_key_env``: the name of the variable holding the API key. ``concurrency``: requests in
    flight per process. ``budget``: requests per run (``None``: no limit); ``ledger``: the
    directory, made by the CLI for one run, in which the processes of that run count them.
    ``cache``: the reply cache directory (``None``: no cache). ``timeout``: seconds per HTTP
    attempt. ``retries``: further attempts after a 408, 409, 429, 5xx, a timeout or a dropped
    connection, with exponential backoff (0.5 s doubling, at most 8 s, or the server's
    ``Retry-After``). ``per_positive``: requests per positive and kind (the tasks of the kind,
    in an order drawn from the rng, repeated as variants). ``temperature``, ``max_tokens``:
    sampling. ``allow_swap``: let an edit turn a perpendicular into a parallel or back (off, as
    in MMGeoLM's prompt).
    """

    model: str
    backend: str = "openai"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    budget: int | None = None
    ledger: str | None = None
    cache: str | None = None
    timeout: float = 60.0
    retries: int = 2
    per_positive: int = 4
    temperature: float = 0.0
    max_tokens: int = 1024
    allow_swap: bool = False

    def __post_init__(self) -> None:
        checks = [
            ("model", bool(self.model.strip()), "a model name or path"),
            ("backend", self.backend in BACKENDS, " or ".join(BACKENDS)),
            ("api_key_env", self.api_key_env.isidentifier(), "the name of an environment variable"),
            ("concurrency", self.concurrency >= 1, "a whole number ≥ 1"),
            ("budget", self.budget is None or self.budget >= 0, "a whole number ≥ 0"),
            ("timeout", self.timeout > 0 and math.isfinite(self.timeout), "seconds > 0"),
            ("retries", self.retries >= 0, "a whole number ≥ 0"),
            ("per_positive", self.per_positive >= 1, "a whole number ≥ 1"),
            ("temperature", 0 <= self.temperature <= 2, "a number from 0 to 2"),
            ("max_tokens", self.max_tokens >= 1, "a whole number ≥ 1"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ConfigError(f"{PREFIX}{name.upper()}={getattr(self, name)!r}: expected {want}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LLMConfig | None:
        """The settings in ``environ`` (default ``os.environ``), or ``None`` when
        ``GEOFORGE_LLM_MODEL`` is unset or empty (the plugin is off). Unset variables take the
        defaults above, except ``cache``, which defaults to :func:`default_cache` (``off``
        turns the cache off). Raises :class:`ConfigError` naming a variable whose value does not
        parse or is out of range."""
        env = os.environ if environ is None else environ
        if not env.get(PREFIX + "MODEL", "").strip():
            return None
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw.strip())
        cache = values.pop("cache", str(default_cache()))
        values["cache"] = None if str(cache).lower() == "off" else cache
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The variables that :meth:`from_env` reads back as this configuration (``""`` for
        ``None``; a ``None`` cache is ``off``)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "cache" and value is None:
                value = "off"
            if isinstance(value, bool):
                value = int(value)
            out[PREFIX + f.name.upper()] = "" if value is None else str(value)
        return out

    def tasks(self, kind: str) -> tuple[str, ...]:
        """The instructions asked for ``kind`` (``image`` or ``caption``)."""
        return TASKS[kind]

    def time_budget(self) -> float:
        """Seconds the plugin may need for one positive and kind in the worst case: every
        request of a positive waits its turn among ``concurrency`` lanes, and each takes at
        most ``retries + 1`` attempts of ``timeout`` seconds with backoff (≤ 8 s) between them,
        plus 10 s for everything else. ``geoforge generate`` raises the plugins' time budget to
        this when the LLM is on."""
        rounds = math.ceil(self.per_positive / self.lanes)
        return 10.0 + rounds * (self.timeout * (self.retries + 1) + 8.0 * self.retries)

    @property
    def lanes(self) -> int:
        """Requests actually in flight at once: ``concurrency``, or 1 for a local model."""
        return 1 if self.backend == "transformers" else self.concurrency


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/geoforge/llm``, or ``~/.cache/geoforge/llm``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "geoforge" / "llm"


def _parse(name: str, kind: str, raw: str) -> object:
    """``raw`` as the type ``kind`` names; raises ConfigError naming the variable."""
    try:
        if "bool" in kind:
            if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if "int" in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except ValueError:
        want = "0 or 1" if "bool" in kind else "a number"
        raise ConfigError(f"{PREFIX}{name.upper()}={raw!r}: expected {want}") from None
    return raw
