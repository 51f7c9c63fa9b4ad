"""geoforge's ``llm_rewrite`` plugin: image and caption negatives from an LLM, every reply
verified (the optional extra ``geoforge[llm]``).

* :mod:`~geoforge_llm.plugin`: the hook, which registers the perturbations only when
  ``GEOFORGE_LLM_MODEL`` is set;
* :mod:`~geoforge_llm.perturbations`: ``llm_rewrite`` (image) and ``llm_rewrite_caption``;
* :mod:`~geoforge_llm.config`: the ``GEOFORGE_LLM_*`` settings;
* :mod:`~geoforge_llm.prompts`: the versioned prompt files in ``prompts/``;
* :mod:`~geoforge_llm.client`: backends (OpenAI-compatible endpoints, local ``transformers``
  models), the reply cache, the request budget;
* :mod:`~geoforge_llm.reply`: reading programs and captions out of replies;
* :mod:`~geoforge_llm.loopback`: a chat-completions server on loopback, for tests and
  measurements.

Importing this package imports neither ``openai`` nor ``torch``: the backend is made on the
first request. See ``docs/llm.md``.
"""

from __future__ import annotations

import geoforge

__version__ = geoforge.__version__
