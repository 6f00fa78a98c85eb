"""`valence evaluate-recs`: are the suggestions sentences a writer would keep?

The evaluation reads the graded set (`data/suggestions/graded_set.jsonl`: everyday sentences
written for Valence, each with a target emotion; rules in `data/suggestions/GRADING.md`).
Each method rewrites every sentence once (its top suggestion, or nothing):

- `valence`: the top suggestion of `Recommender.suggest` (ranking.py).
- `wordnet_synonym` (the baseline, same run): every plain WordNet synonym swap of a content
  word (the most frequent sense's first synonym), the one Valence's model ranks highest for
  the target.

Grades are a person's reading of the actual output: `data/suggestions/grades.jsonl` holds one
line per (method, sentence id, rewritten text) with its grade (good / weak / bad, or none for
no suggestion). A grade counts only while the method still produces exactly that text, so
a change of method leaves its new outputs `ungraded` until they are read again.

Automatic checks, reported beside the grades (none of them can tell sense on its own):
re-parse agreement (grammar.structure_kept), the change of P(target) by Valence's model, the
change by an independent classifier (TF-IDF + logistic regression on CARER train, which the
ranking never consults), and the number of words changed.
"""

from __future__ import annotations

import difflib
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from models.base import Scorer
from models.labels import emotion_label
from models.recommend.budget import Budget
from models.recommend.grammar import Edit, Grammar, structure_kept
from models.recommend.inflection import STOPWORDS, words_with_spans
from models.recommend.ranking import Recommender
from models.recommend.resources import Resources

REPO = Path(__file__).resolve().parents[2]
GRADED_SET = REPO / "data" / "suggestions" / "graded_set.jsonl"
GRADES = REPO / "data" / "suggestions" / "grades.jsonl"
TRAIN = REPO / "data" / "emotion" / "train.jsonl"
VALIDATION = REPO / "data" / "emotion" / "validation.jsonl"
SHARED = REPO.parent / "shared" / "data" / "emotion"
METHODS = ("valence", "wordnet_synonym")
IN_SENTENCE = ("word", "phrase")


def _data(path: Path) -> Path:
    return path if path.is_file() else SHARED / path.name


def read_labelled(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in _data(path).read_bytes().splitlines():
        row = orjson.loads(line)
        label = emotion_label(row["label"])
        if label:
            rows.append((row["text"], label))
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@dataclass(frozen=True, slots=True)
class Rewrite:
    text: str
    start: int
    end: int
    replacement: str

    @property
    def rewritten(self) -> str:
        return self.text[: self.start] + self.replacement + self.text[self.end :]


def synonym_swaps(wordnet: Any, text: str) -> list[Rewrite]:
    """Every plain WordNet synonym swap of a content word (most frequent sense's synonym)."""
    out = []
    for match in words_with_spans(text):
        word = match.group(0).lower()
        if word in STOPWORDS or len(word) < 3:
            continue
        for synset in wordnet.synsets(word):
            names = [
                lemma.name()
                for lemma in synset.lemmas()
                if lemma.name().lower() != word and lemma.name().isalpha()
            ]
            if names:
                out.append(Rewrite(text, match.start(), match.end(), names[0].lower()))
                break
    return out


class BagOfWords:
    """TF-IDF + logistic regression on CARER train: a classifier Valence's ranking never
    consults, to check that gains are not artefacts of Valence's own model."""

    def __init__(self, rows: Sequence[tuple[str, str]]):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        x = self.vectorizer.fit_transform([text for text, _ in rows])
        self.model = LogisticRegression(max_iter=2000, C=5.0)
        self.model.fit(x, [label for _, label in rows])
        self.labels = list(self.model.classes_)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba(self.vectorizer.transform(list(texts)))


@dataclass
class Outcome:
    """One method's top rewrite of one sentence, and what the checks say of it."""

    method: str
    id: str
    text: str
    target: str
    rewritten: str | None = None
    kind: str | None = None  # word, phrase, sentence_adverb (valence); word (baseline)
    sources: list[str] | None = None
    reparse_ok: bool | None = None
    delta_valence: float | None = None  # change of P(target), Valence's model, whole text
    delta_independent: float | None = None  # change of P(target), the TF-IDF classifier
    words_changed: int | None = None
    grade: str | None = None  # good / weak / bad / none, or None: not read yet

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def words_changed(before: str, after: str) -> int:
    """Words removed plus words added (a swap is 2, an inserted adverb 1 + re-cased word 2)."""
    a, b = before.split(), after.split()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return sum(
        (i2 - i1) + (j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )


def _baseline(
    scorer: Scorer, wordnet: Any, texts: Sequence[str], targets: Sequence[str]
) -> list[tuple[Rewrite | None, float]]:
    """Per text, the WordNet synonym swap Valence's model ranks highest for the target."""
    swaps = [synonym_swaps(wordnet, text) for text in texts]
    flat = [s.rewritten for found in swaps for s in found]
    scores = iter(scorer.score(flat)) if flat else iter(())
    out: list[tuple[Rewrite | None, float]] = []
    for found, target in zip(swaps, targets, strict=True):
        best: tuple[Rewrite | None, float] = (None, -1.0)
        for swap in found:
            p = next(scores).emotion.probabilities[target]
            if p > best[1]:
                best = (swap, p)
        out.append(best)
    return out


def graded_evaluation(
    scorer: Scorer,
    resources: Resources,
    *,
    budget: Budget,
    sentences: Path = GRADED_SET,
    grades: Path = GRADES,
    batch: int = 16,
) -> dict[str, Any]:
    """Top rewrites of both methods for every sentence, the automatic checks, and the rates
    of the grades that match the current outputs."""
    rows = read_jsonl(sentences)
    texts = [row["text"] for row in rows]
    targets = [row["target"] for row in rows]
    grammar = Grammar.load()
    recommender = Recommender(scorer, resources, budget, grammar)
    before = scorer.score(texts)
    started = time.perf_counter()
    valence = []
    for first in range(0, len(texts), batch):
        part = slice(first, first + batch)
        valence += recommender.suggest(texts[part], before[part], targets[part])
    seconds = time.perf_counter() - started
    baseline = _baseline(scorer, resources.wordnet, texts, targets)
    bow = BagOfWords(read_labelled(TRAIN))
    graded = _read_grades(grades)

    outcomes: list[Outcome] = []
    for row, found, (swap, _) in zip(rows, valence, baseline, strict=True):
        for method in METHODS:
            outcome = Outcome(method, row["id"], row["text"], row["target"])
            if method == "valence" and found:
                top = found[0]
                outcome.kind = top.kind
                outcome.sources = list(top.sources)
                outcome.rewritten = top.apply(row["text"])
                edit = Edit(top.start, top.end, top.replacement)
            elif method == "wordnet_synonym" and swap is not None:
                outcome.kind = "word"
                outcome.rewritten = swap.rewritten
                edit = Edit(swap.start, swap.end, swap.replacement)
            if outcome.rewritten is not None:
                docs = grammar.parse([row["text"], outcome.rewritten])
                outcome.reparse_ok = structure_kept(docs[0], docs[1], edit)
                outcome.words_changed = words_changed(row["text"], outcome.rewritten)
            outcome.grade = graded.get((method, row["id"], outcome.rewritten))
            outcomes.append(outcome)
    rewritten = [o for o in outcomes if o.rewritten is not None]
    if rewritten:
        after = scorer.score([o.rewritten for o in rewritten])  # type: ignore[misc]
        column = bow.labels.index
        p_before = bow.probabilities([o.text for o in rewritten])
        p_after = bow.probabilities([o.rewritten for o in rewritten])  # type: ignore[misc]
        original = {row["id"]: s for row, s in zip(rows, before, strict=True)}
        for k, (o, s) in enumerate(zip(rewritten, after, strict=True)):
            o.delta_valence = (
                s.emotion.probabilities[o.target] - original[o.id].emotion.probabilities[o.target]
            )
            o.delta_independent = float(
                p_after[k, column(o.target)] - p_before[k, column(o.target)]
            )
    return {
        "sentences": len(rows),
        "setup": {
            "model": scorer.info.name,
            "model_version": scorer.info.version,
            "budget": budget.__dict__,
            "graded_set": str(sentences.relative_to(REPO))
            if sentences.is_relative_to(REPO)
            else str(sentences),
            "seconds_valence_suggestions": round(seconds, 1),
        },
        "summary": {m: summarise([o for o in outcomes if o.method == m]) for m in METHODS},
        "outcomes": [o.to_dict() for o in outcomes],
    }


def _read_grades(path: Path) -> dict[tuple[str, str, str | None], str]:
    if not path.is_file():
        return {}
    return {(g["method"], g["id"], g.get("rewritten")): g["grade"] for g in read_jsonl(path)}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Rates over all sentences (a sentence without a suggestion is neither good nor bad),
    and over the suggestions themselves."""
    n = len(outcomes)
    suggested = [o for o in outcomes if o.rewritten is not None]
    grades = Counter(o.grade or "ungraded" for o in outcomes)
    read = [o for o in suggested if o.grade in ("good", "weak", "bad")]
    inside = [o for o in read if o.kind in IN_SENTENCE]
    adverbs = [o for o in suggested if o.kind == "sentence_adverb"]
    inserted = [o for o in suggested if "verb_adverb" in (o.sources or [])]
    rises = [o for o in suggested if (o.delta_valence or 0.0) > 0]
    independent = [o for o in suggested if (o.delta_independent or 0.0) > 0]
    return {
        "texts": n,
        "with_suggestion": len(suggested),
        "coverage": _share(len(suggested), n),
        "grades": dict(sorted(grades.items())),
        "good_rate": _share(grades["good"], n),
        "weak_rate": _share(grades["weak"], n),
        "bad_rate": _share(grades["bad"], n),
        "good_among_suggested": _share(sum(o.grade == "good" for o in read), len(read)),
        "in_sentence_suggestions": sum(o.kind in IN_SENTENCE for o in suggested),
        "good_among_in_sentence": _share(sum(o.grade == "good" for o in inside), len(inside)),
        "sentence_adverb_share": _share(len(adverbs), len(suggested)),
        # The same stance adverbs placed before the main verb ("was unexpectedly moved"):
        # in the sentence, but the same tool, so reported on their own too.
        "verb_adverb_share": _share(len(inserted), len(suggested)),
        "p_target_rises": _share(len(rises), len(suggested)),
        "independent_classifier_rises": _share(len(independent), len(suggested)),
        "reparse_agreement": _share(sum(bool(o.reparse_ok) for o in suggested), len(suggested)),
        "median_words_changed": statistics.median(o.words_changed or 0 for o in suggested)
        if suggested
        else None,
        "median_delta_valence": round(
            statistics.median(o.delta_valence or 0.0 for o in suggested), 4
        )
        if suggested
        else None,
    }


def render(report: dict[str, Any]) -> str:
    """Every top suggestion for reading, then the rates, as Markdown."""
    lines = ["# Suggestions on the graded set", ""]
    setup = report["setup"]
    lines.append(
        f"Model {setup['model']} {setup['model_version']}; {report['sentences']} sentences "
        f"(`{setup['graded_set']}`); rules: `data/suggestions/GRADING.md`."
    )
    lines += ["", "| | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    keys = [
        "coverage", "good_rate", "weak_rate", "bad_rate", "good_among_suggested",
        "in_sentence_suggestions", "good_among_in_sentence", "sentence_adverb_share",
        "verb_adverb_share",
        "p_target_rises", "independent_classifier_rises", "reparse_agreement",
        "median_words_changed", "median_delta_valence",
    ]  # fmt: skip
    for key in keys:
        cells = [str(report["summary"][m][key]) for m in METHODS]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    grades = " | ".join(str(report["summary"][m]["grades"]) for m in METHODS)
    lines += [f"| grades | {grades} |", "", "## Top suggestions", ""]
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for o in report["outcomes"]:
        by_id.setdefault(o["id"], {})[o["method"]] = o
    for sid, methods in by_id.items():
        first = next(iter(methods.values()))
        lines.append(f"**{sid}** ({first['target']}) {first['text']}")
        for method in METHODS:
            o = methods[method]
            shown = o["rewritten"] if o["rewritten"] is not None else "(no suggestion)"
            extra = ""
            if o["rewritten"] is not None:
                extra = (
                    f" [{o['kind']}; parse {'ok' if o['reparse_ok'] else 'changed'}; "
                    f"dP {o['delta_valence']:+.2f}; indep {o['delta_independent']:+.2f}]"
                )
            lines.append(f"- {method}: {shown}{extra} **{o['grade'] or 'ungraded'}**")
        lines.append("")
    return "\n".join(lines)


def latency(
    scorer: Scorer,
    resources: Resources,
    *,
    budget: Budget | None = None,
    batch: int = 16,
    rounds: int = 3,
    sentences: Path = GRADED_SET,
) -> dict[str, Any]:
    """Per-event cost of suggestions at `batch` events a model call, all with a target, on
    the graded set, against scoring alone in the same run: p50/p95 over batches."""
    from models.recommend.service import StreamStep

    recommender = Recommender(scorer, resources, budget or Budget(), Grammar.load())
    step = StreamStep(recommender, mode="requested")
    rows = read_jsonl(sentences)
    rng = random.Random(11)
    warm = [row["text"] for row in rows[:4]]
    step(warm, scorer.score(warm), [row["target"] for row in rows[:4]])
    scoring: list[float] = []
    extra: list[float] = []
    for _ in range(rounds):
        rng.shuffle(rows)
        for first in range(0, len(rows) - batch + 1, batch):
            part = rows[first : first + batch]
            texts = [row["text"] for row in part]
            t0 = time.perf_counter()
            scores = scorer.score(texts)
            t1 = time.perf_counter()
            step(texts, scores, [row["target"] for row in part])
            t2 = time.perf_counter()
            scoring.append((t1 - t0) / batch * 1000)
            extra.append((t2 - t1) / batch * 1000)

    def quantile(values: list[float], q: float) -> float:
        return round(float(np.quantile(values, q)), 1)

    return {
        "device": scorer.info.device,
        "batch_events": batch,
        "batches": len(extra),
        "ms_per_event_scoring": {"p50": quantile(scoring, 0.5), "p95": quantile(scoring, 0.95)},
        "ms_per_event_suggestions": {"p50": quantile(extra, 0.5), "p95": quantile(extra, 0.95)},
    }


def attribution_cost(
    scorer: Scorer, *, texts: int = 16, seed: int = 5, data: Path = VALIDATION
) -> dict[str, Any]:
    """Per-text time of occlusion vs. gradient x input (one backward per label), same texts,
    same run: the measurement behind the choice of occlusion (models/recommend/README.md)."""
    import torch

    from models.network import masked_mean
    from models.recommend.attribution import occlude
    from models.recommend.encoder import ModelAccess

    rng = random.Random(seed)
    sample = [text for text, _ in rng.sample(read_labelled(data), texts)]
    scores = scorer.score(sample)
    access = ModelAccess(scorer)  # type: ignore[arg-type]
    occlude(access, sample[:2], scores[:2])  # warm
    timings: dict[str, list[float]] = {"occlusion": [], "gradient_x_input": []}
    rows_before = access.rows
    for text, score in zip(sample, scores, strict=True):
        t0 = time.perf_counter()
        occlude(access, [text], [score])
        timings["occlusion"].append(time.perf_counter() - t0)
    rows = (access.rows - rows_before) / len(sample)
    model = access.model
    for text in sample:
        t0 = time.perf_counter()
        ids = torch.tensor([access.encode([text])[0]])
        mask = torch.ones_like(ids)
        embeds = model.encoder.get_input_embeddings()(ids).detach().requires_grad_(True)
        states = model.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        pooled = masked_mean(states, mask)
        logits = torch.cat([model.sentiment_head(pooled), model.emotion_head(pooled)], -1)
        probs = torch.cat([torch.softmax(logits[:, :3], -1), torch.softmax(logits[:, 3:], -1)], -1)
        for label in range(probs.shape[1]):
            (grad,) = torch.autograd.grad(probs[0, label], embeds, retain_graph=True)
            (grad * embeds).sum(-1)
        timings["gradient_x_input"].append(time.perf_counter() - t0)
    return {
        "texts": texts,
        "occlusion_rows_per_text": round(rows, 1),
        "median_ms_per_text": {
            k: round(statistics.median(v) * 1000, 1) for k, v in timings.items()
        },
    }
