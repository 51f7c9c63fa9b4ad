"""``llm_rewrite``: the hook. It registers the LLM perturbations
(:mod:`geoforge_llm.perturbations`) only when ``GEOFORGE_LLM_MODEL`` is set (``geoforge generate
--llm-model``). Without it, it registers nothing and imports nothing more than the settings, so a
run without the LLM is exactly what it was without the plugin, and no slower (about 2 ms per
process). See :mod:`geoforge_llm.config` and ``docs/llm.md``.
"""

from __future__ import annotations

import geoforge
from geoforge_llm.config import LLMConfig


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    """Register ``llm_rewrite`` (image) and ``llm_rewrite_caption`` (caption) when
    ``GEOFORGE_LLM_MODEL`` is set; nothing otherwise. A bad ``GEOFORGE_LLM_*`` value raises
    :class:`~geoforge_llm.config.ConfigError`, which geoforge reports as this plugin's
    failure."""
    config = LLMConfig.from_env()
    if config is None:
        return
    from geoforge_llm.perturbations import LLMCaption, LLMRewrite
    from geoforge_llm.prompts import load_prompts

    prompts = load_prompts()
    register(LLMRewrite(config, prompts))
    register(LLMCaption(config, prompts))
