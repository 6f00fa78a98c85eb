"""Build Valence's emotion-association lexicon from its own training data and model.

Research-only lexicons (NRC) are neither shipped nor read: every association here comes from
data Valence trains on and from the Valence model itself.

1. Data: weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi &
   Quinn 2008), each emotion against the rest, per corpus: CARER train (love -> joy), the
   GoEmotions train split (Ekman grouping; neutral rows count as "rest" only) and TweetEval
   emotion train. Each word counts under its surface form and its lemma. The z-scores are
   squashed with tanh(z / 4) and averaged over the corpora, weighted by their token counts.
2. Model (optional, `--model`): the Valence model's emotion probabilities for the word alone
   and in "i feel <word>", minus their vocabulary mean, scaled to [-1, 1].
3. Association = data where the word is frequent in the data; the model fills in words the
   data barely has (weight `model_weight` x the data's shortfall in evidence).

Kept: alphabetic words with a WordNet entry, Zipf frequency >= 3 and not blocklisted. The file
is `data/emotion_lexicon.json.gz` (a few hundred KB). Rebuild with::

    python -m models.recommend.lexicon --model models/weights
"""

from __future__ import annotations

import argparse
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import orjson

from models.labels import EMOTION_LABELS, GOEMOTIONS_TO_EMOTION, NO_EMOTION, emotion_label
from models.recommend.inflection import WORD_RE, readings
from models.recommend.resources import (
    LEXICON_FILE,
    EmotionLexicon,
    load_blocklist,
    load_wordnet,
    zipf,
)

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CORPORA = {
    "carer": REPO / "data" / "emotion" / "train.jsonl",
    "goemotions": REPO / "data" / "goemotions" / "train.jsonl",
    "tweeteval_emotion": REPO / "data" / "tweeteval-emotion" / "train.jsonl",
}
SHARED = REPO.parent / "shared" / "data"


def _path(name: str) -> Path:
    path = CORPORA[name]
    return path if path.is_file() else SHARED / path.relative_to(REPO / "data")


def labelled_docs(name: str) -> Iterator[tuple[list[str], set[str]]]:
    """(lower-case words, Valence emotion labels) per row; empty labels = rest only."""
    for line in _path(name).read_bytes().splitlines():
        row = orjson.loads(line)
        if "labels" in row:
            labels = {GOEMOTIONS_TO_EMOTION.get(label, "") for label in row["labels"]}
            labels -= {"", NO_EMOTION}
        else:
            label = emotion_label(row["label"])
            labels = {label} if label else set()
        words = [m.group(0).lower() for m in WORD_RE.finditer(row["text"])]
        yield words, labels


def _keys(word: str) -> set[str]:
    return {word} | {lemma for _, _, lemma in readings(word)}


def log_odds(docs: Iterable[tuple[list[str], set[str]]]) -> tuple[dict[str, np.ndarray], int]:
    """Per word, the z-score of each emotion vs the rest (informative Dirichlet prior)."""
    counts: dict[str, Counter[str]] = {label: Counter() for label in EMOTION_LABELS}
    total: Counter[str] = Counter()
    for words, labels in docs:
        keys = Counter(key for word in words for key in _keys(word))
        total.update(keys)
        for label in labels:
            counts[label].update(keys)
    n_total = sum(total.values())
    prior_scale = 500.0  # a0: strength of the prior, as in Monroe et al.
    z: dict[str, np.ndarray] = {}
    sizes = {label: sum(c.values()) for label, c in counts.items()}
    for word, count in total.items():
        if count < 3:
            continue
        alpha = prior_scale * count / n_total
        row = np.zeros(len(EMOTION_LABELS))
        for j, label in enumerate(EMOTION_LABELS):
            y_i = counts[label][word]
            y_j = count - y_i  # the rest: other emotions and unlabelled (neutral) rows
            n_i, n_j = sizes[label], n_total - sizes[label]
            a0 = prior_scale
            if n_i == 0:
                continue
            delta = math.log((y_i + alpha) / (n_i + a0 - y_i - alpha)) - math.log(
                (y_j + alpha) / (n_j + a0 - y_j - alpha)
            )
            variance = 1.0 / (y_i + alpha) + 1.0 / (y_j + alpha)
            row[j] = delta / math.sqrt(variance)
        z[word] = row
    return z, n_total


def model_association(words: list[str], model_dir: Path) -> dict[str, np.ndarray]:
    """Valence's emotion probabilities for each word, centred and scaled to [-1, 1]."""
    from models.inference import TransformerScorer
    from models.loading import load_scorer
    from models.recommend.encoder import ModelAccess

    scorer = load_scorer(model_dir, device="cpu", precision="fp32")
    if not isinstance(scorer, TransformerScorer):
        raise TypeError(f"the lexicon needs a transformer model, {model_dir} is not one")
    access = ModelAccess(scorer, max_rows=256, max_tokens=4096)
    alone = access.forward(words).emotion
    framed = access.forward([f"i feel {w}" for w in words]).emotion
    probs = (alone + framed) / 2
    centred = probs - probs.mean(axis=0, keepdims=True)
    scale = np.abs(centred).max(axis=0, keepdims=True).clip(min=1e-6)
    return {w: centred[i] / scale[0] for i, w in enumerate(words)}


def wordnet_pos(wordnet: object, word: str) -> str:
    letters = {("a" if s.pos() == "s" else s.pos()) for s in wordnet.synsets(word)}  # type: ignore[attr-defined]
    return "".join(sorted(letters))


def build(model_dir: Path | None, model_weight: float = 0.5) -> EmotionLexicon:
    wordnet = load_wordnet()
    blocklist = load_blocklist()
    per_corpus: list[tuple[dict[str, np.ndarray], int, Counter[str]]] = []
    for name in CORPORA:
        docs = list(labelled_docs(name))
        z, n_tokens = log_odds(docs)
        freq: Counter[str] = Counter(k for words, _ in docs for w in words for k in _keys(w))
        per_corpus.append((z, n_tokens, freq))
        log.info("%s: %d words, %d tokens", name, len(z), n_tokens)
    vocabulary = sorted(
        w
        for w in set().union(*(z for z, _, _ in per_corpus))
        if w.isalpha() and len(w) > 2 and w not in blocklist and zipf(w) >= 3.0
    )
    pos = {w: wordnet_pos(wordnet, w) for w in vocabulary}
    vocabulary = [w for w in vocabulary if pos[w]]
    scores: dict[str, np.ndarray] = {}
    evidence: dict[str, float] = {}
    for word in vocabulary:
        weighted, weight_sum, count = np.zeros(len(EMOTION_LABELS)), 0.0, 0
        for z, n_tokens, freq in per_corpus:
            if word in z:
                weighted += n_tokens * np.tanh(z[word] / 4.0)
                weight_sum += n_tokens
                count += freq[word]
        scores[word] = weighted / max(weight_sum, 1.0)
        evidence[word] = min(1.0, count / 50.0)  # 50+ occurrences: the data alone decides
    meta: dict[str, object] = {
        "method": "weighted log-odds, informative Dirichlet prior (a0=500), tanh(z/4)",
        "corpora": list(CORPORA),
        "min_zipf": 3.0,
    }
    if model_dir is not None:
        model = model_association(vocabulary, model_dir)
        for word in vocabulary:
            share = model_weight * (1.0 - evidence[word])
            scores[word] = (1.0 - share) * scores[word] + share * model[word]
        meta["model"] = str(model_dir)
        meta["model_weight"] = model_weight
    return EmotionLexicon(
        labels=EMOTION_LABELS,
        scores={w: tuple(float(v) for v in scores[w]) for w in vocabulary},
        pos={w: pos[w] for w in vocabulary},
        meta=meta,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="Valence model directory (optional)")
    parser.add_argument("--output", type=Path, default=LEXICON_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lexicon = build(args.model)
    lexicon.save(args.output)
    for label in lexicon.labels:
        top = ", ".join(w for w, _ in lexicon.top(label, k=12))
        log.info("%s: %s", label, top)
    log.info(
        "wrote %d words to %s (%d bytes)",
        len(lexicon.scores),
        args.output,
        args.output.stat().st_size,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
