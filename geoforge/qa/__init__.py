"""Q&A from the engine: perception and reasoning questions about a figure, with exact answers.

:mod:`~geoforge.qa.items` holds the records (answers, distractors, flips, their JSON),
:mod:`~geoforge.qa.perception` the questions that read a figure, :mod:`~geoforge.qa.reasoning`
those that derive a value, :mod:`~geoforge.qa.choices` the wrong options of multiple-choice
questions, and :mod:`~geoforge.qa.build` puts them together for a figure or a corpus sample.
"""

from geoforge.qa.build import QAConfig, add_qa, make_qa, qa_chunk, qa_counts
from geoforge.qa.items import (
    ANSWER_KINDS,
    LETTERS,
    Answer,
    Distractor,
    Flip,
    QAError,
    QAItem,
    dump_items,
    load_items,
)

__all__ = [
    "ANSWER_KINDS",
    "LETTERS",
    "Answer",
    "Distractor",
    "Flip",
    "QAConfig",
    "QAError",
    "QAItem",
    "add_qa",
    "dump_items",
    "load_items",
    "make_qa",
    "qa_chunk",
    "qa_counts",
]
