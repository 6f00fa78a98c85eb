"""Recommendations: attribution offsets, inflection, letter case, budget, blocklist.

Fast and deterministic: a tiny random DistilBERT (tests.tiny_model) where a real network is
needed, a keyword "model" where the answer must be known, and a hand-made WordNet, GloVe and
lexicon, so nothing here needs the Debian WordNet files or the GloVe package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pytest

from models.base import LabelScores, SegmentScore, TextScore
from models.labels import EMOTION_LABELS, SENTIMENT_LABELS
from models.recommend.attribution import attributions, occlude
from models.recommend.candidates import generate
from models.recommend.encoder import Forward
from models.recommend.inflection import (
    WORD_RE,
    analyse,
    fits,
    inflect,
    match_case,
    words_set,
)
from models.recommend.resources import (
    EmotionLexicon,
    Glove,
    Resources,
    ensure_wordnet,
    load_blocklist,
)

# --- a hand-made WordNet ----------------------------------------------------------------


@dataclass
class FakeLemma:
    _name: str
    _synset: FakeSynset
    _antonyms: list[FakeLemma] = field(default_factory=list)

    def name(self) -> str:
        return self._name

    def antonyms(self) -> list[FakeLemma]:
        return self._antonyms

    def synset(self) -> FakeSynset:
        return self._synset


class FakeSynset:
    def __init__(self, pos: str, names: list[str]):
        self._pos = pos
        self._lemmas = [FakeLemma(name, self) for name in names]
        self.similar: list[FakeSynset] = []

    def pos(self) -> str:
        return self._pos

    def lemmas(self) -> list[FakeLemma]:
        return self._lemmas

    def similar_tos(self) -> list[FakeSynset]:
        return self.similar

    def also_sees(self) -> list[FakeSynset]:
        return []

    def hypernyms(self) -> list[FakeSynset]:
        return []

    def hyponyms(self) -> list[FakeSynset]:
        return []


class FakeWordNet:
    def __init__(self) -> None:
        sad = FakeSynset("a", ["sad", "unhappy"])
        happy = FakeSynset("a", ["happy", "glad"])
        sad.lemmas()[0]._antonyms = [happy.lemmas()[0]]
        sad.similar = [FakeSynset("s", ["gloomy", "shitty", "lugubrious"])]
        self.table = {
            ("sad", "a"): [sad],
            ("happy", "a"): [happy],
            ("tear", "n"): [FakeSynset("n", ["tear", "teardrop"])],
            ("hate", "v"): [FakeSynset("v", ["hate", "detest"])],
            ("cry", "v"): [FakeSynset("v", ["cry", "weep"])],
            ("terrify", "v"): [FakeSynset("v", ["terrify", "frighten"])],
            ("terrified", "a"): [FakeSynset("a", ["terrified", "scared"])],
        }

    def synsets(self, word: str, pos: str | None = None) -> list[FakeSynset]:
        return [
            s
            for (w, p), found in self.table.items()
            if w == word and pos in (None, p)
            for s in found
        ]


VOCAB = list(
    words_set(
        "sad happy glad gloomy shitty lugubrious unhappy joyful cheerful tear teardrop joy smile "
        "laugh hate detest love adore cry weep terrified scared delighted thrilled frighten "
        "delight terrify"
    )
)
VOCAB.sort()


def fake_glove() -> Glove:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 16)).astype(np.float32)
    vectors = base + 0.3 * rng.normal(size=(len(VOCAB), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Glove(list(VOCAB), vectors)  # all words close to each other (cosine ~0.9)


def fake_lexicon() -> EmotionLexicon:
    joy = {
        "happy": 0.8,
        "glad": 0.7,
        "joyful": 0.8,
        "cheerful": 0.6,
        "joy": 0.9,
        "love": 0.7,
        "adore": 0.6,
        "delighted": 0.8,
        "delight": 0.7,
        "thrilled": 0.7,
        "smile": 0.6,
        "laugh": 0.5,
        "shitty": 0.9,
        "lugubrious": 0.9,
    }
    sad = {"sad": 0.9, "gloomy": 0.7, "tear": 0.6, "cry": 0.7, "weep": 0.7, "unhappy": 0.8}
    scores, pos = {}, {}
    for word in VOCAB:
        row = [0.0] * len(EMOTION_LABELS)
        row[EMOTION_LABELS.index("joy")] = joy.get(word, -0.6 if word in sad else -0.2)
        row[EMOTION_LABELS.index("sadness")] = sad.get(word, -0.2)
        scores[word] = tuple(row)
        pos[word] = (
            "nv"
            if word in {"tear", "joy", "smile", "laugh", "love", "cry", "delight"}
            else (
                "v" if word in {"hate", "detest", "adore", "weep", "frighten", "terrify"} else "a"
            )
        )
    return EmotionLexicon(EMOTION_LABELS, scores, pos)


@pytest.fixture(scope="module")
def resources() -> Resources:
    return Resources(
        wordnet=FakeWordNet(),
        glove=fake_glove(),
        vader={"happy": 2.7, "glad": 2.0, "sad": -2.1, "gloomy": -2.5, "love": 3.2},
        lexicon=fake_lexicon(),
        blocklist=load_blocklist(),
        min_zipf=3.0,
    )


# --- inflection and case ----------------------------------------------------------------


def slot(text: str, word: str):
    words = text.split()
    result = analyse(words, words.index(word))
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("text", "word", "lemma", "upos", "expected"),
    [
        ("i feel so much happier today", "happier", "glad", "ADJ", "gladder"),
        ("my tears fell on the page", "tears", "smile", "NOUN", "smiles"),
        ("i hated the long drive", "hated", "love", "VERB", "loved"),
        ("she hates the rain", "hates", "love", "VERB", "loves"),
        ("i am crying again", "crying", "laugh", "VERB", "laughing"),
        ("i feel terrified", "terrified", "delight", "VERB", "delighted"),
        ("i feel terrified", "terrified", "happy", "ADJ", "happy"),
    ],
)
def test_replacement_takes_the_slots_inflection(text, word, lemma, upos, expected) -> None:
    assert inflect(lemma, upos, slot(text, word)) == expected


def test_a_word_of_the_wrong_part_of_speech_does_not_fit() -> None:
    s = slot("i hated the long drive", "hated")
    assert fits("loved", s)
    assert not fits("love", s)  # base form where the past tense is needed
    assert not fits("happy", s)  # an adjective in a verb slot
    assert inflect("happy", "ADJ", s) is None


def test_letter_case_follows_the_original() -> None:
    assert match_case("Sad", "glad") == "Glad"
    assert match_case("SAD", "glad") == "GLAD"
    assert match_case("sad", "glad") == "glad"
    assert match_case("I", "we") == "We"


# --- candidates ---------------------------------------------------------------------------


def candidates(resources: Resources, text: str, word: str, target: str = "joy"):
    match = next(m for m in WORD_RE.finditer(text) if m.group(0) == word)
    words = [m.group(0) for m in WORD_RE.finditer(text)]
    s = analyse(words, words.index(word))
    assert s is not None
    return generate(resources, text, match.start(), match.end(), s, target)


def test_candidates_keep_case_and_inflection(resources: Resources) -> None:
    found = candidates(resources, "Sad. I feel Sad today", "Sad")
    replacements = {c.replacement for c in found}
    assert "Happy" in replacements and "Glad" in replacements
    assert all(c.replacement[0].isupper() for c in found)
    comparative = candidates(resources, "i feel happier", "happier", "sadness")
    assert {c.replacement for c in comparative} >= {"sadder"}
    assert all(fits(c.replacement, slot("i feel happier", "happier")) for c in comparative)


def test_candidates_carry_model_free_support(resources: Resources) -> None:
    found = {c.replacement: c for c in candidates(resources, "i feel sad", "sad")}
    assert found["happy"].support > 0 > found["gloomy"].support
    assert "antonym" in found["happy"].sources


def test_blocklisted_and_rare_words_are_never_proposed(resources: Resources) -> None:
    found = {c.replacement for c in candidates(resources, "i feel sad", "sad")}
    assert "shitty" not in found  # blocklisted, though the lexicon loves it
    assert "lugubrious" not in found  # Zipf < 3
    comparative = {c.replacement for c in candidates(resources, "i feel sadder", "sadder")}
    assert "happier" in comparative and "gladder" not in comparative  # Zipf 4.1 vs 1.3
    assert "shitty" in load_blocklist()


# --- attribution --------------------------------------------------------------------------


class KeywordAccess:
    """A 'model' that sees joy in 'happy' and sadness in 'rain': known right answers."""

    emotion_labels = EMOTION_LABELS
    sentiment_labels = SENTIMENT_LABELS

    def __init__(self) -> None:
        self.rows: list[str] = []

    def forward(self, texts):
        self.rows.extend(texts)
        emotion = np.full((len(texts), 5), 0.1)
        sentiment = np.full((len(texts), 3), 1 / 3)
        for i, text in enumerate(texts):
            lower = text.lower()
            emotion[i, 0] += 0.5 * ("happy" in lower)
            emotion[i, 4] += 0.5 * ("rain" in lower)
            sentiment[i, 2] += 0.3 * ("happy" in lower)
        emotion /= emotion.sum(1, keepdims=True)
        sentiment /= sentiment.sum(1, keepdims=True)
        return Forward(sentiment, emotion, np.ones((len(texts), 4)) / 2)


def text_score(text: str, segments: list[tuple[int, int]]) -> TextScore:
    emotion = LabelScores("joy", dict(zip(EMOTION_LABELS, [0.4, 0.1, 0.1, 0.1, 0.3], strict=True)))
    sentiment = LabelScores("positive", {"negative": 0.2, "neutral": 0.2, "positive": 0.6})
    return TextScore(
        sentiment,
        0.4,
        emotion,
        0.4,
        [SegmentScore(s, e, 10, sentiment, emotion, 0.4) for s, e in segments],
        20,
    )


def test_attribution_spans_point_at_the_words_that_carry_each_label() -> None:
    text = "The rain kept falling. But honestly, I am Happy now!"
    score = text_score(text, [(0, 22), (23, len(text))])
    [occlusion] = occlude(KeywordAccess(), [text], [score])
    result = {
        (a.head, a.label): a
        for a in attributions(text, score, occlusion, EMOTION_LABELS, SENTIMENT_LABELS)
    }
    joy = result[("emotion", "joy")].spans
    sadness = result[("emotion", "sadness")].spans
    assert [(s.start, s.end, s.text) for s in joy] == [(42, 47, "Happy")]
    assert text[joy[0].start : joy[0].end] == "Happy"
    assert [s.text for s in sadness] == ["rain"] and text[
        sadness[0].start : sadness[0].end
    ] == "rain"
    assert result[("sentiment", "positive")].spans[0].text == "Happy"
    orjson.dumps([a.to_dict() for a in result.values()])
    for attribution in result.values():
        for span in attribution.spans:
            assert text[span.start : span.end] == span.text
            assert span.score > 0


def test_occlusion_removes_exactly_one_word_per_row() -> None:
    access = KeywordAccess()
    text = "I am so happy today"
    occlude(access, [text], [text_score(text, [(0, len(text))])])
    assert access.rows[0] == text
    assert access.rows[1:] == ["I am so today", "I am so happy"]  # stopwords are kept


# --- resources ------------------------------------------------------------------------------


def test_wordnet_files_are_placed_under_the_cache(tmp_path: Path) -> None:
    source = tmp_path / "debian"
    source.mkdir()
    for kind in ("data", "index"):
        for pos in ("noun", "verb", "adj", "adv"):
            (source / f"{kind}.{pos}").write_text("x")
    for pos in ("noun", "verb", "adj", "adv"):
        (source / f"{pos}.exc").write_text("x")
    root = ensure_wordnet(tmp_path / "cache", source)
    placed = root / "corpora" / "wordnet"
    assert (placed / "data.noun").is_file() and not (placed / "data.noun").is_symlink()
    assert (placed / "lexnames").read_text().splitlines()[0].split()[1] == "adj.all"


def test_missing_wordnet_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="apt-get install wordnet-base"):
        ensure_wordnet(tmp_path / "cache", tmp_path / "nowhere")
