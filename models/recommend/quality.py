"""`valence evaluate-recs`: does the top suggestion move a text toward its target emotion?

For each target emotion, `per_target` labelled validation texts whose gold label and whose
predicted dominant emotion both differ from the target are drawn (seeded). Each method
rewrites every text once; the rewrite is scored again with the full scorer (the real
whole-text probability, not the prediction the ranking used):

- `valence`: the top suggestion of `Recommender.suggest`.
- `wordnet_synonym` (the baseline): a plain WordNet synonym swap: a random content word with
  a single-word synonym, replaced by the synonym of its most frequent sense (no inflection,
  no ranking).
- `wordnet_synonym_ranked`: every plain synonym swap of the text, the one Valence's model
  ranks highest for the target (shows what the other candidate sources add).

Reported per method: share of texts whose P(target) rises, share whose dominant emotion
becomes the target, mean and median change of P(target) (a text without a rewrite counts as
no change), median meaning similarity (mean-pooled embedding cosine, original vs rewrite)
under the meaning encoder (untuned all-MiniLM-L6-v2, see encoder.py) and, for reference,
under Valence's fine-tuned encoder (which moves with the emotion by design), share of
rewrites failing the part-of-speech/inflection check, and two model-free cross-checks Valence's
ranking never sees: a TF-IDF logistic regression trained on CARER train (its P(target)) and the
VADER lexicon's valence in the target's direction.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from models.base import Scorer, TextScore
from models.labels import EMOTION_LABELS, emotion_label
from models.recommend.budget import Budget
from models.recommend.candidates import VADER_DIRECTION
from models.recommend.inflection import STOPWORDS, analyse, fits, words_with_spans
from models.recommend.ranking import Recommender
from models.recommend.resources import Resources

REPO = Path(__file__).resolve().parents[2]
VALIDATION = REPO / "data" / "emotion" / "validation.jsonl"
TRAIN = REPO / "data" / "emotion" / "train.jsonl"
SHARED = REPO.parent / "shared" / "data" / "emotion"


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


@dataclass(frozen=True, slots=True)
class Rewrite:
    text: str
    start: int
    end: int
    replacement: str

    @property
    def rewritten(self) -> str:
        return self.text[: self.start] + self.replacement + self.text[self.end :]


# --- the pos/inflection check -------------------------------------------------------------


def form_ok(text: str, start: int, end: int, replacement: str) -> bool:
    """True when the replacement can fill the replaced word's slot: same part of speech in
    context and the same inflection (tag), by lemminflect's tables (see inflection.py)."""
    words = words_with_spans(text)
    index = next((i for i, m in enumerate(words) if m.start() == start and m.end() == end), None)
    if index is None or " " in replacement:
        return False
    slot = analyse([m.group(0) for m in words], index)
    if slot is None:
        return False
    return fits(replacement, slot)


# --- baselines ------------------------------------------------------------------------------


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


# --- independent cross-checks ---------------------------------------------------------------


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


def vader_valence(vader: dict[str, float], text: str) -> float:
    values = [vader.get(m.group(0).lower(), 0.0) for m in words_with_spans(text)]
    return float(sum(values))


# --- evaluation -----------------------------------------------------------------------------


@dataclass
class Sample:
    text: str
    gold: str
    target: str
    score: TextScore


def draw(
    scorer: Scorer, rows: Sequence[tuple[str, str]], per_target: int, seed: int
) -> list[Sample]:
    rng = random.Random(seed)
    pool = list(rows)
    rng.shuffle(pool)
    pool = pool[: per_target * len(EMOTION_LABELS) * 3]
    scores = scorer.score([text for text, _ in pool])
    samples: list[Sample] = []
    used: set[int] = set()
    for target in EMOTION_LABELS:
        count = 0
        for i, ((text, gold), score) in enumerate(zip(pool, scores, strict=True)):
            if count >= per_target:
                break
            emotion = score.emotion.probabilities
            dominant = max(emotion, key=lambda k: emotion[k])
            if i in used or gold == target or dominant == target:
                continue
            used.add(i)
            samples.append(Sample(text, gold, target, score))
            count += 1
    return samples


def _summary(values: dict[str, list[float]], n: int) -> dict[str, Any]:
    deltas = values["delta"]
    return {
        "texts": n,
        "rewritten": int(sum(values["rewritten"])),
        "raised_share": round(sum(d > 0 for d in deltas) / n, 4),
        "became_target_share": round(sum(values["became"]) / n, 4),
        "mean_delta": round(float(np.mean(deltas)), 4),
        "median_delta": round(float(np.median(deltas)), 4),
        "median_similarity": round(statistics.median(values["similarity"]), 4)
        if values["similarity"]
        else None,
        "median_similarity_tuned_encoder": round(statistics.median(values["similarity_own"]), 4)
        if values["similarity_own"]
        else None,
        "form_error_share": round(1 - float(np.mean(values["form_ok"])), 4)
        if values["form_ok"]
        else None,
        "bow_raised_share": round(sum(d > 0 for d in values["bow_delta"]) / n, 4),
        "bow_mean_delta": round(float(np.mean(values["bow_delta"])), 4),
        "vader_agrees_share": round(float(np.mean(values["vader_ok"])), 4)
        if values["vader_ok"]
        else None,
    }


def evaluate(
    scorer: Scorer,
    resources: Resources,
    *,
    per_target: int = 60,
    seed: int = 7,
    budget: Budget | None = None,
    data: Path = VALIDATION,
    batch_size: int = 16,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _: None)
    started = time.monotonic()
    recommender = Recommender(scorer, resources, budget or Budget())
    samples = draw(scorer, read_labelled(data), per_target, seed)
    say(f"{len(samples)} texts drawn")
    bow = BagOfWords(read_labelled(TRAIN))
    encoder = recommender.meaning
    access = recommender.access

    rewrites: dict[str, list[Rewrite | None]] = {"valence": [], "wordnet_synonym": []}
    rewrites["wordnet_synonym_ranked"] = []
    rng = random.Random(seed)
    suggest_s = 0.0
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        t0 = time.monotonic()
        suggestions = recommender.suggest(
            [s.text for s in chunk], [s.score for s in chunk], [s.target for s in chunk]
        )
        suggest_s += time.monotonic() - t0
        for sample, found in zip(chunk, suggestions, strict=True):
            top = found[0] if found else None
            rewrites["valence"].append(
                Rewrite(sample.text, top.start, top.end, top.replacement) if top else None
            )
        say(f"suggested {min(i + batch_size, len(samples))}/{len(samples)}")
    all_swaps = [synonym_swaps(resources.wordnet, s.text) for s in samples]
    for swaps in all_swaps:
        rewrites["wordnet_synonym"].append(rng.choice(swaps) if swaps else None)
    # Ranked synonyms: every swap of every text in one batched pass, best for the target.
    flat = [(k, swap) for k, swaps in enumerate(all_swaps) for swap in swaps]
    forward = access.forward([swap.rewritten for _, swap in flat])
    best: dict[int, tuple[float, Rewrite]] = {}
    for row, (k, swap) in enumerate(flat):
        p = forward.emotion[row, EMOTION_LABELS.index(samples[k].target)]
        if k not in best or p > best[k][0]:
            best[k] = (float(p), swap)
    rewrites["wordnet_synonym_ranked"] = [
        best[k][1] if k in best else None for k in range(len(samples))
    ]

    say("baselines done; rescoring the rewrites")
    originals = [s.text for s in samples]
    bow_before = bow.probabilities(originals)
    st_before = encoder.embed(originals)
    own_before = access.forward(originals).embedding
    report: dict[str, Any] = {}
    for method, chosen in rewrites.items():
        texts = [r.rewritten if r else s.text for r, s in zip(chosen, samples, strict=True)]
        after = scorer.score(texts)
        bow_after = bow.probabilities(texts)
        st_after = encoder.embed(texts)
        own_after = access.forward(texts).embedding
        values: dict[str, list[float]] = {
            k: []
            for k in (
                "delta",
                "became",
                "rewritten",
                "similarity",
                "similarity_own",
                "form_ok",
                "bow_delta",
                "vader_ok",
            )
        }
        examples: list[dict[str, Any]] = []
        for k, (sample, rewrite, score) in enumerate(zip(samples, chosen, after, strict=True)):
            target = sample.target
            if rewrite is None:  # unchanged text: no change (not batch-padding float noise)
                score = sample.score
            probs = score.emotion.probabilities
            delta = probs[target] - sample.score.emotion.probabilities[target]
            values["delta"].append(delta)
            values["became"].append(float(max(probs, key=lambda k: probs[k]) == target))
            values["rewritten"].append(float(rewrite is not None))
            column = bow.labels.index(target)
            values["bow_delta"].append(
                float(bow_after[k, column] - bow_before[k, column]) if rewrite else 0.0
            )
            if rewrite is None:
                continue
            values["similarity"].append(float(st_before[k] @ st_after[k]))
            values["similarity_own"].append(float(own_before[k] @ own_after[k]))
            values["form_ok"].append(
                float(form_ok(sample.text, rewrite.start, rewrite.end, rewrite.replacement))
            )
            direction = VADER_DIRECTION[target]
            if direction:
                change = vader_valence(resources.vader, texts[k]) - vader_valence(
                    resources.vader, sample.text
                )
                values["vader_ok"].append(float(direction * change > 0))
            if len(examples) < 12:
                examples.append(
                    {
                        "target": target,
                        "text": sample.text,
                        "original": sample.text[rewrite.start : rewrite.end],
                        "replacement": rewrite.replacement,
                        "delta": round(delta, 4),
                    }
                )
        report[method] = _summary(values, len(samples))
        report[method]["examples"] = examples
        report[method]["per_target"] = {
            target: round(
                float(
                    np.mean(
                        [
                            d
                            for d, s in zip(values["delta"], samples, strict=True)
                            if s.target == target
                        ]
                    )
                ),
                4,
            )
            for target in EMOTION_LABELS
        }
    base = report["wordnet_synonym"]["mean_delta"]
    ours = report["valence"]
    b = budget or Budget()
    report["targets"] = {
        "raised_share>=0.80": ours["raised_share"] >= 0.80,
        "median_similarity>=0.85": (ours["median_similarity"] or 0) >= 0.85,
        "mean_gain>=2x_synonym": ours["mean_delta"] >= 2 * max(base, 0.0)
        and ours["mean_delta"] > 0,
    }
    report["setup"] = {
        "data": str(_data(data).relative_to(REPO.parent)),
        "texts": len(samples),
        "per_target": per_target,
        "seed": seed,
        "budget": b.__dict__,
        "model": {"name": scorer.info.name, "version": scorer.info.version},
        "suggest_seconds": round(suggest_s, 2),
        "total_seconds": round(time.monotonic() - started, 2),
    }
    return report


# --- latency ----------------------------------------------------------------------------------


def latency(
    scorer: Scorer,
    resources: Resources,
    *,
    budget: Budget | None = None,
    batch_sizes: Sequence[int] = (1, 16),
    repeats: int = 12,
    seed: int = 3,
    data: Path = VALIDATION,
) -> dict[str, Any]:
    """Median per-event time of scoring alone vs. scoring + suggestions (every event with a
    target), on the same texts in the same run; and with attribution too."""
    from models.recommend.service import StreamStep

    recommender = Recommender(scorer, resources, budget or Budget())
    rows = read_labelled(data)
    rng = random.Random(seed)
    out: dict[str, Any] = {"device": scorer.info.device, "dtype": scorer.info.dtype}
    plain = StreamStep(recommender, mode="all", default_target="joy")
    both = StreamStep(recommender, mode="all", default_target="joy", attribution=True)
    warm = [text for text, _ in rng.sample(rows, 8)]
    plain(warm, scorer.score(warm), [None] * len(warm))
    for size in batch_sizes:
        timings: dict[str, list[float]] = {"score": [], "score+suggest": [], "+attribution": []}
        for _ in range(max(3, repeats * 4 // (size + 3))):  # fewer repeats of big batches
            texts = [text for text, _ in rng.sample(rows, size)]
            targets = [rng.choice([e for e in EMOTION_LABELS if e != "joy"] + ["joy"])] * size
            t0 = time.perf_counter()
            scores = scorer.score(texts)
            t1 = time.perf_counter()
            plain(texts, scores, targets)
            t2 = time.perf_counter()
            scores = scorer.score(texts)
            both(texts, scores, targets)
            t3 = time.perf_counter()
            timings["score"].append((t1 - t0) / size)
            timings["score+suggest"].append((t2 - t0) / size)
            timings["+attribution"].append((t3 - t2) / size)
        med = {k: statistics.median(v) * 1000 for k, v in timings.items()}
        out[f"batch_{size}"] = {
            "median_ms_per_event_scoring": round(med["score"], 2),
            "median_ms_per_event_scoring_and_suggestions": round(med["score+suggest"], 2),
            "median_ms_per_event_extra_for_suggestions": round(
                med["score+suggest"] - med["score"], 2
            ),
            "median_ms_per_event_scoring_suggestions_attribution": round(med["+attribution"], 2),
            "repeats": len(timings["score"]),
        }
    return out


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
