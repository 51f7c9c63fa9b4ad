"""What a plugin hands geoforge, judged before it is used: a perturbation at registration
(:func:`perturbation_problem`) and each item it proposes (:func:`candidate_problem`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from geoforge.perturb import (
    CaptionCandidate,
    ImageCandidate,
    Rejected,
)


def perturbation_problem(perturbation: Any) -> str:
    """What keeps ``perturbation`` from being a :class:`~geoforge.perturb.Perturbation`, field
    by field (``"`kind` is 'picture', expected 'image' or 'caption'"``), or ``""``. A
    ``propose`` whose signature cannot take ``(positive, rng)`` is caught here, at registration,
    rather than as a TypeError on the first positive. A name is one word (letters, digits,
    ``_``, ``.``, ``-``): it keys the ``"name: reason"`` counts and is given to ``--no-plugin``."""
    import inspect
    import re

    problems = []
    name = getattr(perturbation, "name", None)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        problems.append(f"`name` is {name!r}, expected a word of letters, digits, _ . or -")
    kind = getattr(perturbation, "kind", None)
    if kind not in ("image", "caption"):
        problems.append(f"`kind` is {kind!r}, expected 'image' or 'caption'")
    propose = getattr(perturbation, "propose", None)
    if not callable(propose):
        problems.append("`propose` is missing or not callable, expected a method propose(positive, rng)")
    else:
        try:
            signature = inspect.signature(propose)
        except (TypeError, ValueError):  # a builtin without a signature: judged when called
            signature = None
        if signature is not None:
            try:
                signature.bind(None, None)
            except TypeError:
                problems.append(f"`propose` takes {signature}, expected (positive, rng)")
    return "; ".join(problems)


def candidate_problem(item: object, kind: str) -> str | None:
    """Why ``item`` is not a well-formed candidate of a ``kind`` (``"image"`` or ``"caption"``)
    perturbation, in a phrase (``"expected CaptionCandidate, got str"``), or ``None`` for a
    well-formed candidate or :class:`~geoforge.perturb.Rejected`. ``generate`` drops such an
    item as garbage; :func:`geoforge.testing.run_perturbation` counts it the same way."""
    from geoforge.program import Program
    from geoforge.verify import claim_problem

    if isinstance(item, Rejected):
        ok = isinstance(item.reason, str) and item.reason.strip()
        return None if ok else f"Rejected.reason is {type(item.reason).__name__}, not a phrase"
    want = ImageCandidate if kind == "image" else CaptionCandidate
    if not isinstance(item, want):
        return f"expected {want.__name__}, got {type(item).__name__}"
    if isinstance(item, ImageCandidate) and not isinstance(item.program, Program):
        return f"ImageCandidate.program is {type(item.program).__name__}, not a Program"
    fields = [("breaks", item.breaks)]
    if isinstance(item, CaptionCandidate):
        fields.insert(0, ("claims", item.claims))
        if item.text is not None and not isinstance(item.text, str):
            return f"CaptionCandidate.text is {type(item.text).__name__}, not a str"
    for label, claims in fields:
        if not isinstance(claims, tuple | list):
            return f"{type(item).__name__}.{label} is {type(claims).__name__}, not a tuple of Claims"
        for claim in claims:
            if (problem := claim_problem(claim)) is not None:
                return f"{type(item).__name__}.{label}: {problem}"
    return None


def mutation_hint(e: BaseException) -> str:
    """A hint for an exception that looks like an attempt to change the read-only positive."""
    text = str(e)
    if (
        isinstance(e, dataclasses.FrozenInstanceError)
        or (isinstance(e, ValueError) and "read-only" in text)
        or (isinstance(e, TypeError) and "mappingproxy" in text)
    ):
        return (
            " (plugins get a read-only copy of the positive: build new values, e.g. "
            "`positive.scene.points[p] + shift`, instead of changing it in place)"
        )
    return ""
