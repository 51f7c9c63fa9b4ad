"""The ``llm_rewrite`` perturbations: hard negatives from an LLM that edits diagram programs
(and captions).

MMGeoLM (Sun et al. 2025, §3.1) asks an LLM for perturbed diagram code and keeps whatever
runs. Here the LLM edits geoforge's diagram program (``llm_rewrite``, image negatives) or the
caption (``llm_rewrite_caption``, caption negatives) following one instruction of the paper's
taxonomy, and every reply becomes a candidate that geoforge's verifier judges like any other.
A reply that cannot become a candidate is yielded as :class:`geoforge.perturb.Rejected` with
its reason, so the run counts it.

:mod:`geoforge_llm.plugin` registers them only when an LLM is configured. See
``docs/llm.md``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import numpy as np

from geoforge.caption import CaptionReadError, read_caption
from geoforge.edit import dependents
from geoforge.perturb import CaptionCandidate, ImageCandidate, Positive, Rejected
from geoforge.program import Program
from geoforge_llm.client import Outcome, client_for
from geoforge_llm.config import LLMConfig
from geoforge_llm.prompts import Prompts
from geoforge_llm.reply import extract_caption, extract_program, swaps_claim, swaps_relation

Judge = Callable[[str, Positive, str], "ImageCandidate | CaptionCandidate | Rejected"]


class _LLMPerturbation:
    """What both perturbations share: the settings, the prompt file, the requests of one
    positive (in flight while the verifier works), and the provenance for the manifest."""

    name: str
    kind: str

    def __init__(self, config: LLMConfig, prompts: Prompts) -> None:
        self.config = config
        self.prompts = prompts

    @property
    def provenance(self) -> dict[str, str]:
        """What made this perturbation's candidates, for the corpus manifest (no endpoint, no
        key: an endpoint's URL may carry credentials)."""
        c = self.config
        return {
            "backend": c.backend,
            "model": c.model,
            "prompts": self.prompts.version,
            "prompt_sha256": self.prompts.sha256,
            "temperature": f"{c.temperature:g}",
            "max_tokens": str(c.max_tokens),
            "per_positive": str(c.per_positive),
            "allow_swap": str(c.allow_swap).lower(),
        }

    def plan(self, rng: np.random.Generator) -> list[tuple[str, int]]:
        """``config.per_positive`` (task, variant) pairs: the kind's tasks in an order drawn from
        ``rng``, repeated as variants 1, 2, ... when more requests than tasks are asked for."""
        tasks = self.config.tasks(self.kind)
        order = [tasks[int(i)] for i in rng.permutation(len(tasks))]
        return [(order[k % len(order)], k // len(order)) for k in range(self.config.per_positive)]

    def requests(self, positive: Positive, rng: np.random.Generator, judge: Judge) -> Iterator[object]:
        """Send the plan's requests and yield each reply's candidate (or Rejected) in plan order,
        so the result does not depend on which reply comes first.

        The first candidate costs one request. Once the caller asks for a second, the next
        requests are kept in flight while it verifies and renders the one before, up to
        ``config.lanes`` at once, so a caller that stops after one wastes nothing and one that
        goes on waits little. Requests still queued when the caller stops are cancelled; those
        already sent finish in the background and land in the cache."""
        client = client_for(self.config)
        plan = iter(self.plan(rng))
        pending: deque[tuple[str, Future[Outcome]]] = deque()

        def top_up(ahead: int) -> None:
            while len(pending) < ahead and (step := next(plan, None)) is not None:
                task, variant = step
                messages = self.prompts.messages(self.kind, positive, task, variant, self.config.allow_swap)
                request = {
                    "backend": self.config.backend,
                    "model": self.config.model,
                    "messages": messages,
                    "temperature": self.config.temperature,
                    "max_tokens": self.config.max_tokens,
                }
                about = {
                    "model": self.config.model,
                    "prompt_sha256": self.prompts.sha256,
                    "program_hash": positive.program.canonical_hash(),
                    "kind": self.kind,
                    "task": task,
                }
                pending.append((task, client.submit(request, about)))

        ahead = 0  # requests in flight beside the one awaited: none until a second is asked for
        try:
            while True:
                top_up(max(ahead, 1))
                if not pending:
                    return
                task, future = pending.popleft()
                top_up(ahead)
                outcome = future.result()
                yield (
                    Rejected(outcome.reason) if outcome.text is None else judge(outcome.text, positive, task)
                )
                ahead = self.config.lanes - 1
        finally:
            for _, future in pending:
                future.cancel()


class LLMRewrite(_LLMPerturbation):
    """Image perturbation: the LLM edits the diagram program."""

    name = "llm_rewrite"
    kind = "image"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[object]:
        return self.requests(positive, rng, self.judge)

    def judge(self, reply: str, positive: Positive, task: str) -> ImageCandidate | Rejected:
        """The candidate in ``reply``: its program, the clause it changed (if one), and the
        positive caption's claims about the points it changed or removed and those built on
        them; or Rejected with the reason there is none."""
        program, reason = extract_program(reply, positive.program)
        if program is None:
            return Rejected(reason)
        if not self.config.allow_swap and swaps_relation(positive.program, program):
            return Rejected("parallel↔perpendicular swap")
        clauses, points = _changed(positive.program, program)
        breaks = tuple(c for c in positive.caption.claims if points & c.points)
        clause = clauses[0] + 1 if len(clauses) == 1 else None
        return ImageCandidate(program, clause, f"llm {task}", breaks)


class LLMCaption(_LLMPerturbation):
    """Caption perturbation: the LLM edits the caption text."""

    name = "llm_rewrite_caption"
    kind = "caption"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[object]:
        return self.requests(positive, rng, self.judge)

    def judge(self, reply: str, positive: Positive, task: str) -> CaptionCandidate | Rejected:
        """The caption in ``reply`` as a candidate with its own text (the verifier reads the
        text; a text outside the caption language is rejected there), its claims as read and
        those that the positive does not state as ``breaks``; or Rejected."""
        from geoforge.verify import claim_key

        text = extract_caption(reply)
        if not text:
            return Rejected("no caption in the reply")
        try:
            claims = read_caption(text).claims
        except CaptionReadError:
            claims = ()
        if not self.config.allow_swap and swaps_claim(positive.caption.claims, claims):
            return Rejected("parallel↔perpendicular swap")
        stated = {claim_key(c) for c in positive.caption.claims}
        breaks = tuple(c for c in claims if claim_key(c) not in stated)
        return CaptionCandidate(tuple(claims), f"llm {task}", breaks, text=text)


def _changed(old: Program, new: Program) -> tuple[list[int], set[str]]:
    """The 0-based indices of ``old``'s clauses that ``new`` changes or drops, and the points
    touched: those of changed, dropped or new clauses and of changed statements, with every
    point of ``old`` built on them."""
    now = {c.points: c.text() for c in new.clauses}
    clauses = [i for i, c in enumerate(old.clauses) if now.get(c.points) != c.text()]
    points = {p for i in clauses for p in old.clauses[i].points}
    points |= {p for c in new.clauses if c.points not in {d.points for d in old.clauses} for p in c.points}
    statements = {s.text() for s in old.statements} ^ {s.text() for s in new.statements}
    points |= {p for s in (*old.statements, *new.statements) if s.text() in statements for p in s.points}
    return clauses, dependents(old, points & set(old.points)) | points
