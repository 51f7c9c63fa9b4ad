"""What a run counts over its corpus, shard by shard, for the manifest, the card and the table.

Every backend counts each shard where it is written (the driver for ``--backend local``, the
Ray task for ``--backend ray``) and the driver merges the shards' tallies in shard order, so the
end-of-run numbers are the same whatever ran the shards, and nothing reads the corpus back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from geoforge.corpus import Counts, Record
from geoforge.qa import qa_counts
from geoforge.tokens import LongCaptions, corpus_captions, long_captions

#: Captions shown on the dataset card: the corpus's first ones.
EXAMPLES = 3


def load_tokenizer() -> None:
    """Import the tokenizer that :meth:`Tally.merge` counts with (open_clip imports torch:
    seconds), so that a run can do it while its workers make the first shard."""
    long_captions(())


@dataclass
class Tally:
    """The counts of some consecutive shards: their sizes (``shard-NNNNNN.tar`` → samples, in
    shard order), the sample :class:`~geoforge.corpus.Counts`, the long-caption counts
    (:func:`geoforge.tokens.long_captions`), the Q&A totals (:func:`geoforge.qa.qa_counts`)
    when ``with_qa``, the first :data:`EXAMPLES` captions, the samples made in this run (not
    kept from a resumed one), ``busy``: the worker-seconds spent making them, and
    ``plugin_seconds``: of those, the seconds per ``"perturbation: propose"`` and
    ``"perturbation: verify"`` (:attr:`geoforge.plugins.PluginHost.seconds`).

    A shard's tally keeps its ``captions`` (positive, caption negatives) as text; they are
    tokenized when the tally is merged into the corpus's, in the driver, so that workers (Ray
    tasks) never import open_clip and torch. Memory: one shard's captions at most."""

    with_qa: bool = False
    sizes: dict[str, int] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    long: LongCaptions | None = None
    qa: dict[str, Any] | None = None
    examples: list[str] = field(default_factory=list)
    made: int = 0
    busy: float = 0.0
    plugin_seconds: Counter[str] = field(default_factory=Counter)
    captions: list[tuple[str, list[str]]] = field(default_factory=list, repr=False)

    def add(self, key: str, files: dict[str, bytes]) -> None:
        """Count one sample, given its members as written (``{ext: bytes}``)."""
        record = Record(key, files)
        meta = record.meta
        self.counts.add(meta)
        self.captions.extend(corpus_captions([record]))
        if self.with_qa:
            self._add_qa(qa_counts([meta]))
        if len(self.examples) < EXAMPLES:
            self.examples.append(files["txt"].decode())

    def seal(self, shard: str, samples: int) -> Tally:
        """Close the shard ``shard`` of ``samples`` samples (record its size). Returns self."""
        self.sizes[shard] = samples
        return self

    def merge(self, other: Tally) -> None:
        """Add the tally of the shards that follow these (merge in shard order), counting the
        tokens of its captions."""
        self.sizes.update(other.sizes)
        if other.captions:
            self._add_long(long_captions(other.captions))
        self.counts.merge(other.counts)
        if other.long is not None:
            self._add_long(other.long)
        if other.qa is not None:
            self._add_qa(other.qa)
        self.examples.extend(other.examples[: EXAMPLES - len(self.examples)])
        self.made += other.made
        self.busy += other.busy
        self.plugin_seconds.update(other.plugin_seconds)

    def qa_json(self) -> dict[str, Any]:
        """The Q&A totals, shaped as :func:`geoforge.qa.qa_counts` returns them."""
        return self.qa if self.qa is not None else qa_counts(())

    def long_json(self) -> dict[str, object]:
        """The manifest's ``long_captions``, shaped as :meth:`LongCaptions.to_json`."""
        return (self.long or long_captions(())).to_json()

    def _add_long(self, other: LongCaptions) -> None:
        mine = self.long
        if mine is None:
            self.long = other
            return
        same = (
            None
            if mine.same_as_positive is None or other.same_as_positive is None
            else (mine.same_as_positive + other.same_as_positive)
        )
        self.long = LongCaptions(
            mine.captions + other.captions,
            mine.longer + other.longer,
            same,
            exact=mine.exact and other.exact,
            context=mine.context,
        )

    def _add_qa(self, other: dict[str, Any]) -> None:
        self.qa = _add_counts(self.qa or {}, other)


def _add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two Q&A totals added: numbers summed, mappings of numbers summed key by key and sorted
    by key, as :func:`geoforge.qa.qa_counts` sorts them."""
    out: dict[str, Any] = {}
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) or isinstance(y, dict):
            both = Counter(x or {})
            both.update(y or {})
            out[key] = dict(sorted(both.items()))
        else:
            out[key] = (x or 0) + (y or 0)
    return out
