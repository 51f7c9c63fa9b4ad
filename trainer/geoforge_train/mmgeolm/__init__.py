"""MMGeoLM: a LLaVA-style geometry model on the MMCLIP tower (Sun et al. 2025, §3).

:mod:`~geoforge_train.mmgeolm.model` assembles, saves and loads the model
(``transformers.LlavaForConditionalGeneration``: the MMCLIP tower as a ``CLIPVisionModel``, a
2-layer GELU projector, any causal LM) and checks image tokens against image features;
:mod:`~geoforge_train.mmgeolm.data` reads captions and Q&A from geoforge corpora into batches;
:mod:`~geoforge_train.mmgeolm.train` runs stage ``align`` and stage ``sft`` with the Hugging Face
``Trainer``; :mod:`~geoforge_train.mmgeolm.evaluate` scores replies, per question type and
paired on positive and image-negative figures, and reads GeoQA and MathVista files;
:mod:`~geoforge_train.mmgeolm.tiny` builds tiny language models in-process.
"""
