"""Read the labelled JSONL data sets and map their label words onto Valence's labels.

Formats (see data/README.md): one JSON object a line, `{"text": ..., "label": "<word>"}`
(CARER, TweetEval, SST-2), or `{"text": ..., "labels": [<words>]}` (GoEmotions, multi-label).
Label words go through models/labels.py, so CARER `love` becomes `joy` and GoEmotions' fine
labels are grouped into Valence's five emotions (Ekman grouping, disgust dropped).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.labels import (
    EMOTION_HEAD_WITH_NONE,
    EMOTION_LABELS,
    GOEMOTIONS_TO_EMOTION,
    NO_EMOTION,
    SENTIMENT_LABELS,
    emotion_label,
    sentiment_label,
)

Task = Literal["emotion", "sentiment"]
TASKS: tuple[Task, ...] = ("emotion", "sentiment")

# models/training/ is two levels below the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text. `label` is a Valence label of `task` (or NO_EMOTION)."""

    text: str
    task: Task
    label: str

    @property
    def label_index(self) -> int:
        """Index of the label in its head's output order; NO_EMOTION is the emotion head's
        `none` class (EMOTION_HEAD_WITH_NONE), which only a head trained with it has."""
        if self.task == "emotion" and self.label == NO_EMOTION:
            return EMOTION_HEAD_WITH_NONE.index(NO_EMOTION)
        return task_labels(self.task).index(self.label)


def task_labels(task: Task) -> tuple[str, ...]:
    """The head's label order for a task."""
    return EMOTION_LABELS if task == "emotion" else SENTIMENT_LABELS


def _rows(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{number}: expected an object with a 'text' string")
            yield row


def _grouped_emotion(words: list[str]) -> str | None:
    """One Valence emotion (or NO_EMOTION) for a GoEmotions label list, None if ambiguous.

    Rows whose labels fall into two Valence emotions (e.g. joy + sadness), or only into
    disgust, are dropped: a single-label head can be neither trained nor scored on them.
    Disgust next to one Valence emotion is ignored (the row counts as that emotion), and so is
    `neutral` next to an emotion: an annotator saw that emotion. Only a row labelled `neutral`
    alone is NO_EMOTION.
    """
    groups = {GOEMOTIONS_TO_EMOTION[w] for w in words if w in GOEMOTIONS_TO_EMOTION}
    emotions = groups - {NO_EMOTION}
    if len(emotions) == 1:
        return emotions.pop()
    if not emotions and groups == {NO_EMOTION} and len(words) == 1:
        return NO_EMOTION
    return None


def read_examples(
    path: Path, task: Task, *, include_none: bool = True, limit: int | None = None
) -> list[Example]:
    """Labelled examples of `task` from a JSONL file, in file order.

    Rows whose label has no Valence equivalent (e.g. GoEmotions disgust, or an emotion row
    mapping to two emotions) are skipped. `include_none` keeps GoEmotions `neutral` rows as
    NO_EMOTION examples (for the emotion task; they have no sentiment label).
    """
    examples: list[Example] = []
    for row in _rows(path):
        label: str | None
        if "labels" in row:
            labels = row["labels"]
            if not isinstance(labels, list):
                raise ValueError(f"{path}: `labels` must be a list, got {labels!r}")
            words = [str(w).strip().lower() for w in labels]
            label = _grouped_emotion(words) if task == "emotion" else None
            if label == NO_EMOTION and not include_none:
                label = None
        else:
            word = str(row.get("label", ""))
            label = emotion_label(word) if task == "emotion" else sentiment_label(word)
        if label is not None:
            examples.append(Example(text=str(row["text"]), task=task, label=label))
            if limit is not None and len(examples) >= limit:
                break
    return examples


def sample_examples(path: Path, task: Task, limit: int | None, seed: int) -> list[Example]:
    """The task's examples, a seeded random subset of `limit` when there are more."""
    examples = read_examples(path, task, include_none=False)
    if limit is not None and len(examples) > limit:
        rng = random.Random(f"{seed}:{task}")
        examples = rng.sample(examples, limit)
    return examples
