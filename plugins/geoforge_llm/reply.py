"""Reading an LLM's reply: the program or caption in it, fenced or not, and why there is none.

Nothing here raises for a bad reply: every function returns what it found and, when it found
nothing usable, a short fixed reason that the run counts (``no program in the reply``,
``unknown construction``, ``malformed program``, ``no caption in the reply``,
``parallel↔perpendicular swap``). Whether a program or caption that reads is a *negative* is
the verifier's decision, not this module's.
"""

from __future__ import annotations

import re

from geoforge.caption import Claim
from geoforge.program import Program, parse_program

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_NAME = r"[A-Za-z][A-Za-z0-9_']*(?:@[-0-9.eE+]+_[-0-9.eE+]+)?"
#: A line that looks like a clause (``D = foot D A B C``) or a statement (``draw segment A B``).
_PROGRAM_LINE = re.compile(
    rf"^\s*(?:(?:{_NAME}\s+)*{_NAME}\s*=\s*[a-z_][a-z0-9_]*\b|(?:draw|mark|given)\s+[a-z])"
)
#: The pairs of constructions that a parallel↔perpendicular swap exchanges.
_SWAPS = {frozenset({"on_tline", "on_pline"}), frozenset({"on_tline", "on_pline0"})}


def _clean(reply: str) -> str:
    """``reply`` without reasoning blocks (``<think>…</think>``) and Windows line ends."""
    return _THINK.sub("", reply.replace("\r\n", "\n"))


def fenced_blocks(reply: str) -> list[str]:
    """The contents of the reply's fenced code blocks, in order (an unclosed last fence runs to
    the end of the reply)."""
    return [m.group(1) for m in _FENCE.finditer(_clean(reply))]


def program_texts(reply: str) -> list[str]:
    """The texts in ``reply`` that may be programs, each as one line of DSL: every fenced
    block, or with no fence, the lines that look like clauses or statements. A block written
    one clause per line is joined with ``;``; ``#`` comments are dropped."""
    blocks = fenced_blocks(reply)
    if not blocks:
        lines = [line for line in _clean(reply).splitlines() if _PROGRAM_LINE.match(line)]
        blocks = ["\n".join(lines)] if lines else []
    texts = []
    for block in blocks:
        lines = [line.split("#", 1)[0].strip().rstrip(";").strip() for line in block.splitlines()]
        text = "; ".join(line for line in lines if line)
        if text:
            texts.append(text)
    return texts


def extract_program(reply: str, original: Program) -> tuple[Program | None, str]:
    """The edited program in ``reply`` and ``""``, or ``None`` and the reason there is none.

    Every text of :func:`program_texts` is parsed; the first that parses and is not
    ``original`` (canonical forms compared) is returned, else the first that parses (the
    verifier then rejects it as the positive). With none that parses, the reason is ``no
    program in the reply`` (nothing looks like a program), ``unknown construction`` (a name not
    in the construction table, e.g. a made-up one) or ``malformed program``."""
    texts = [t for t in program_texts(reply) if "=" in t]
    if not texts:
        return None, "no program in the reply"
    parsed: list[Program] = []
    unknown = False
    for text in texts:
        try:
            parsed.append(parse_program(text, source="llm reply"))
        except Exception as e:  # a reply is untrusted text: any failure to parse is a reason
            unknown = unknown or "unknown construction" in str(e)
    if not parsed:
        return None, "unknown construction" if unknown else "malformed program"
    same = original.canonical_hash()
    return next((p for p in parsed if p.canonical_hash() != same), parsed[0]), ""


def extract_caption(reply: str) -> str:
    """The edited caption in ``reply`` as one line: the first non-empty fenced block (``""`` if
    every fence is empty), else the whole reply, without a leading ``Caption:`` and surrounding
    quotes; ``""`` if none."""
    blocks = fenced_blocks(reply)
    text = next((b for b in blocks if b.strip()), "") if blocks else _clean(reply)
    text = " ".join(text.split())
    text = re.sub(r"^(?:new |edited )?caption\s*:\s*", "", text, flags=re.I)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text.strip("“”").strip()


def swaps_relation(old: Program, new: Program) -> bool:
    """True if ``new`` turns a perpendicular of ``old`` into a parallel through the same points
    or back: a clause building the same points calls ``on_pline`` where ``old`` called
    ``on_tline`` with the same arguments (``on_pline0`` likewise)."""
    before = {c.points: c.calls for c in old.clauses}
    for clause in new.clauses:
        for call in clause.calls:
            for was in before.get(clause.points, ()):
                if was.args == call.args and frozenset({was.name, call.name}) in _SWAPS:
                    return True
    return False


def swaps_claim(old: tuple[Claim, ...] | list[Claim], new: tuple[Claim, ...] | list[Claim]) -> bool:
    """True if a claim of ``new`` is a ``parallel`` where ``old`` claims ``perpendicular`` about
    the same lines, or the reverse (each kind's symmetries included)."""
    from geoforge.verify import claim_key

    other = {"parallel": "perpendicular", "perpendicular": "parallel"}
    keys = {claim_key(c) for c in old}
    return any(c.kind in other and claim_key(Claim(other[c.kind], c.args)) in keys for c in new)
