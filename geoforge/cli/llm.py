"""``generate``'s ``--llm-*`` options: they turn on the ``llm_rewrite`` plugin (the
``geoforge[llm]`` extra) for one run.

The plugin runs inside worker processes and receives only ``(positive, rng)``, so the options
travel as ``GEOFORGE_LLM_*`` environment variables (:mod:`geoforge_llm.config`): set here for
this process, inherited by its workers, restored when the command ends. The API key itself
never travels: ``--llm-api-key-env`` names the variable that holds it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geoforge.errors import UsageError

if TYPE_CHECKING:
    from geoforge_llm.config import LLMConfig

    from geoforge.negatives import NegativeConfig

PANEL = "LLM negatives (geoforge[llm], docs/llm.md)"

LLMModel = Annotated[
    str | None,
    typer.Option(
        "--llm-model",
        help="Turn on llm_rewrite with this model: a name the endpoint serves, or a directory "
        "with --llm-backend transformers.",
        rich_help_panel=PANEL,
    ),
]
LLMBaseURL = Annotated[
    str | None,
    typer.Option(
        "--llm-base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: OpenAI's).",
        rich_help_panel=PANEL,
    ),
]
LLMBackend = Annotated[
    str,
    typer.Option(
        "--llm-backend",
        help="openai (any chat-completions endpoint) or transformers (a local model).",
        rich_help_panel=PANEL,
    ),
]
LLMKeyEnv = Annotated[
    str,
    typer.Option(
        "--llm-api-key-env",
        help="Name of the environment variable holding the API key.",
        rich_help_panel=PANEL,
    ),
]
LLMConcurrency = Annotated[
    int,
    typer.Option("--llm-concurrency", min=1, help="Requests in flight per process.", rich_help_panel=PANEL),
]
LLMBudget = Annotated[
    int | None,
    typer.Option(
        "--llm-budget", min=0, help="Most requests this run sends (default: no limit).", rich_help_panel=PANEL
    ),
]
LLMCache = Annotated[
    str | None,
    typer.Option(
        "--llm-cache",
        help="Reply cache directory, or 'off' (default: ~/.cache/geoforge/llm).",
        rich_help_panel=PANEL,
    ),
]
LLMTimeout = Annotated[
    float,
    typer.Option("--llm-timeout", min=0.001, help="Seconds per HTTP attempt.", rich_help_panel=PANEL),
]
LLMPerPositive = Annotated[
    int,
    typer.Option(
        "--llm-per-positive",
        min=1,
        help="Requests per positive, for each kind of negative.",
        rich_help_panel=PANEL,
    ),
]
LLMAllowSwap = Annotated[
    bool,
    typer.Option("--llm-allow-swap", help="Allow parallel↔perpendicular swaps.", rich_help_panel=PANEL),
]


def apply_llm_options(
    ctx: typer.Context,
    negatives: NegativeConfig,
    *,
    model: str | None,
    base_url: str | None,
    backend: str,
    api_key_env: str,
    concurrency: int,
    budget: int | None,
    cache: str | None,
    timeout: float,
    per_positive: int,
    allow_swap: bool,
) -> tuple[NegativeConfig, LLMConfig | None]:
    """Turn the options on for the command of ``ctx``: set ``GEOFORGE_LLM_*`` (restored, and the
    run's request ledger removed, when the command ends) and return ``negatives`` with a time budget
    the LLM can meet (:meth:`geoforge_llm.config.LLMConfig.time_budget`), and the settings.
    Without ``--llm-model`` nothing changes, and ``(negatives, None)`` is returned (a
    ``GEOFORGE_LLM_MODEL`` set by hand still turns the plugin on). Raises UsageError for an
    ``--llm-*`` option without ``--llm-model``, a bad value, a backend whose package is not
    installed, or no API key for OpenAI's own endpoint."""
    if model is None:
        if base_url or cache or budget is not None or allow_swap or backend != "openai":
            raise UsageError("--llm-* options need --llm-model MODEL to turn the LLM plugin on")
        return negatives, None
    from geoforge_llm.config import BACKENDS, ConfigError, LLMConfig, default_cache

    if backend not in BACKENDS:
        raise UsageError(f"--llm-backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    needs = {"openai": ("openai", "geoforge[llm]"), "transformers": ("transformers", "geoforge[train]")}[
        backend
    ]
    if importlib.util.find_spec(needs[0]) is None:  # finds it without importing it
        raise UsageError(f"--llm-backend {backend} needs `{needs[0]}`: pip install '{needs[1]}'")
    if backend == "openai" and base_url is None and not os.environ.get(api_key_env):
        raise UsageError(
            f"no API key for OpenAI: set ${api_key_env}, or pass --llm-base-url for a local server"
        )
    ledger = tempfile.mkdtemp(prefix="geoforge-llm-ledger-")
    try:
        config = LLMConfig(
            model=model,
            backend=backend,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            budget=budget,
            ledger=ledger,
            cache=None
            if (cache or "").lower() == "off"
            else str(Path(cache or default_cache()).expanduser()),
            timeout=timeout,
            per_positive=per_positive,
            allow_swap=allow_swap,
        )
    except ConfigError as e:
        shutil.rmtree(ledger, ignore_errors=True)
        raise UsageError(str(e)) from None
    saved = {k: os.environ.get(k) for k in config.to_env()}

    def restore() -> None:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(ledger, ignore_errors=True)

    os.environ.update(config.to_env())
    ctx.call_on_close(restore)
    if not negatives.image and not negatives.caption:
        typer.echo(
            "warning: --llm-model has no effect without --image-negatives or --caption-negatives", err=True
        )
    budget_s = max(negatives.time_budget or 0.0, config.time_budget())
    return dataclasses.replace(negatives, time_budget=budget_s), config


def llm_summary(config: LLMConfig | None) -> str:
    """One line on what the run asked of the LLM (empty without one): the requests its
    processes sent (cached replies cost none), the budget, and where replies are cached."""
    if config is None:
        return ""
    from geoforge_llm.client import spent

    sent = spent(config.ledger) if config.ledger else 0
    limit = "" if config.budget is None else f" (budget {config.budget})"
    cache = f"replies cached in {config.cache}" if config.cache else "no reply cache"
    return f"llm_rewrite ({config.backend}, {config.model}): {sent} requests sent{limit}; {cache}"
