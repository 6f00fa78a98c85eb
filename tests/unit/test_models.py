"""Network, loading and inference, on a tiny random DistilBERT (the drop-in backbone path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from models.artifact import MANIFEST_NAME, WEIGHTS_NAME, ModelManifest
from models.backbone import build_random_distilbert
from models.base import TextScore
from models.inference import TransformerScorer
from models.labels import EMOTION_LABELS, NO_EMOTION, SENTIMENT_LABELS
from models.loading import load_scorer, resolve_device, resolve_precision
from models.network import SentimentEmotionModel, masked_mean
from tests.tiny_model import write_random_model

MAX_SEGMENT_TOKENS = 32


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_model(tmp_path_factory.mktemp("random-model"))


@pytest.fixture(scope="module")
def scorer(model_dir: Path) -> TransformerScorer:
    loaded = load_scorer(
        model_dir, device="cpu", torch_threads=1, max_segment_tokens=MAX_SEGMENT_TOKENS
    )
    assert isinstance(loaded, TransformerScorer)
    return loaded


def _assert_valid(score: TextScore) -> None:
    assert list(score.sentiment.probabilities) == list(SENTIMENT_LABELS)
    assert list(score.emotion.probabilities) == list(EMOTION_LABELS)
    assert sum(score.sentiment.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(score.emotion.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert score.sentiment.label in SENTIMENT_LABELS
    assert score.emotion.label in (*EMOTION_LABELS, NO_EMOTION)
    probabilities = score.sentiment.probabilities
    assert score.valence == pytest.approx(probabilities["positive"] - probabilities["negative"])
    assert 0.0 <= score.emotion_intensity <= 1.0
    assert score.tokens == sum(segment.tokens for segment in score.segments)


def _assert_segments_cover(text: str, score: TextScore) -> None:
    covered = [False] * len(text)
    previous_end = 0
    for segment in score.segments:
        assert previous_end <= segment.start <= segment.end <= len(text)
        covered[segment.start : segment.end] = [True] * (segment.end - segment.start)
        previous_end = segment.end
    lost = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    assert not lost, f"{len(lost)} characters in no segment"


def test_heads_output_shapes_and_masked_mean() -> None:
    torch.manual_seed(0)
    model = SentimentEmotionModel(build_random_distilbert()).eval()
    ids = torch.randint(1000, 2000, (4, 7))
    mask = torch.ones_like(ids)
    mask[0, 3:] = 0
    logits = model(ids, mask)
    assert logits.sentiment.shape == (4, len(SENTIMENT_LABELS))
    assert logits.emotion.shape == (4, len(EMOTION_LABELS))

    hidden = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    pooled = masked_mean(hidden, torch.tensor([[1, 1, 0]]))
    assert torch.equal(pooled, hidden[0, :2].mean(0, keepdim=True))


def test_random_distilbert_loads_and_scores(scorer: TransformerScorer) -> None:
    texts = ["I love this. It is great!", "This is awful and I am furious.", "ok"]
    scores = scorer.score(texts)
    assert len(scores) == len(texts)
    for score in scores:
        _assert_valid(score)
    assert scores[0].segments[0].start == 0 and len(scores[0].segments) == 2
    assert scorer.info.backbone == "config:distilbert"
    assert (scorer.info.device, scorer.info.dtype) == ("cpu", "float32")


def test_long_text_is_chunked_and_fully_covered(scorer: TransformerScorer) -> None:
    words = [f"word{i % 50}" for i in range(2000)]
    text = " ".join(words[:700]) + ". Short one! " + " ".join(words[700:])
    [score] = scorer.score([text])
    _assert_valid(score)
    assert len(score.segments) > 2000 * 2 // MAX_SEGMENT_TOKENS
    assert all(segment.tokens <= MAX_SEGMENT_TOKENS for segment in score.segments)
    _assert_segments_cover(text, score)
    assert score.tokens == scorer.count_tokens(text)


def test_segments_cover_awkward_text(scorer: TransformerScorer) -> None:
    text = "\u0007\u0007. Hello 🙂 there!\n\n\u200b\u200b.  Ünïcödé text… " + "x" * 400
    [score] = scorer.score([text])
    _assert_valid(score)
    _assert_segments_cover(text, score)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_blank_text_scores_one_empty_segment(scorer: TransformerScorer, text: str) -> None:
    [score] = scorer.score([text])
    _assert_valid(score)
    assert len(score.segments) == 1 and score.tokens == 2


def test_scores_do_not_depend_on_batch_company(scorer: TransformerScorer) -> None:
    short, long = "fine.", "a much longer sentence with many more tokens in it than the other"
    alone = scorer.score([short])[0].emotion.probabilities
    together = scorer.score([long, short, long * 3])[1].emotion.probabilities
    for label in EMOTION_LABELS:
        assert together[label] == pytest.approx(alone[label], abs=1e-5)


def test_none_rule_follows_threshold(model_dir: Path) -> None:
    scorer = load_scorer(model_dir, device="cpu")
    assert isinstance(scorer, TransformerScorer)
    scorer.none_threshold = 1.01
    assert scorer.score(["what a day"])[0].emotion.label == NO_EMOTION
    scorer.none_threshold = 0.0
    [score] = scorer.score(["what a day"])
    assert score.emotion.label == max(
        score.emotion.probabilities, key=score.emotion.probabilities.__getitem__
    )


def test_none_class_model_serves_five_emotions_and_reads_none_off_its_head(
    tmp_path: Path,
) -> None:
    from models.inference import five_emotions

    model_dir = write_random_model(tmp_path / "none-class", emotion_none_class=True)
    scorer = load_scorer(model_dir, device="cpu", torch_threads=1)
    assert isinstance(scorer, TransformerScorer)
    assert scorer.model.emotion_head.out_features == 6
    # Make `none` certain: the bias dwarfs the random weights.
    with torch.no_grad():
        scorer.model.emotion_head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0, 12.0]))
    [score] = scorer.score(["nothing to feel here. just a fact."])
    _assert_valid(score)
    assert score.emotion.label == NO_EMOTION and score.emotion_intensity < 0.01
    # The five served probabilities are the head's emotions renormalised: sadness leads.
    assert max(score.emotion.probabilities, key=score.emotion.probabilities.get) == "sadness"
    with torch.no_grad():
        scorer.model.emotion_head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 12.0, -12.0]))
    scorer.none_threshold = 0.5
    [score] = scorer.score(["nothing to feel here. just a fact."])
    assert score.emotion.label == "sadness" and score.emotion_intensity > 0.9
    # The neutral sentiment no longer discounts the intensity of a none-class model.
    assert score.emotion_intensity == pytest.approx(
        max(score.emotion.probabilities.values()), abs=1e-3
    )

    emotions, p_none = five_emotions(np.array([[0.1, 0.1, 0.0, 0.0, 0.0, 0.8]]), True)
    assert emotions.tolist() == [[0.5, 0.5, 0.0, 0.0, 0.0]] and p_none.tolist() == [0.8]
    emotions, p_none = five_emotions(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), True)
    assert emotions.tolist() == [0.2] * 5  # all mass on none: uniform, never NaN


def test_int8_precision_scores(model_dir: Path) -> None:
    scorer = load_scorer(model_dir, device="cpu", precision="int8")
    assert scorer.info.dtype == "int8"
    _assert_valid(scorer.score(["quantised but still a distribution"])[0])


def test_warmup_runs(scorer: TransformerScorer) -> None:
    scorer.warmup()


def test_precision_and_device_rules() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("auto", cuda) == "fp16"
    with pytest.raises(ValueError):
        resolve_precision("int8", cuda)
    assert resolve_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert resolve_device("auto") == cpu


def _copy_model(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in (MANIFEST_NAME, WEIGHTS_NAME):
        (target / name).write_bytes((source / name).read_bytes())
    return target


def test_stored_tensor_without_parameter_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    broken = _copy_model(model_dir, tmp_path / "broken")
    tensors = load_file(str(broken / WEIGHTS_NAME))
    tensors["encoder.not_a_layer.weight"] = torch.zeros(2)
    save_file(tensors, str(broken / WEIGHTS_NAME))
    with pytest.raises(ValueError, match="match no parameter"):
        load_scorer(broken, device="cpu")


def test_missing_tensor_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    broken = _copy_model(model_dir, tmp_path / "broken")
    tensors = load_file(str(broken / WEIGHTS_NAME))
    del tensors["emotion_head.weight"]
    save_file(tensors, str(broken / WEIGHTS_NAME))
    with pytest.raises(ValueError, match="missing"):
        load_scorer(broken, device="cpu")


def test_manifest_with_unknown_field_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    broken = _copy_model(model_dir, tmp_path / "broken")
    raw = json.loads((broken / MANIFEST_NAME).read_text())
    raw["surprise_field"] = 1
    (broken / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="unknown fields"):
        ModelManifest.read(broken)


def test_weights_are_stored_in_fp16(model_dir: Path) -> None:
    tensors = load_file(str(model_dir / WEIGHTS_NAME))
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}


def test_packed_sentences_share_segments_and_still_cover(model_dir: Path) -> None:
    scorer = load_scorer(
        model_dir, device="cpu", max_segment_tokens=MAX_SEGMENT_TOKENS, pack_sentences=True
    )
    [short] = scorer.score(["Great game. Awful referee! Home now."])
    assert len(short.segments) == 1 and short.segments[0].start == 0
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    [long] = scorer.score([text])
    _assert_valid(long)
    assert 1 < len(long.segments) < 60
    assert all(segment.tokens <= MAX_SEGMENT_TOKENS for segment in long.segments)
    _assert_segments_cover(text, long)
    assert long.tokens == scorer.count_tokens(text)


def test_short_multi_sentence_text_is_also_scored_whole(model_dir: Path) -> None:
    def load(whole_text: bool) -> TransformerScorer:
        loaded = load_scorer(
            model_dir, device="cpu", max_segment_tokens=MAX_SEGMENT_TOKENS, whole_text=whole_text
        )
        assert isinstance(loaded, TransformerScorer)
        return loaded

    whole, mean = load(True), load(False)
    text = "Great game. Awful referee! Home now."
    [by_whole], [by_mean] = whole.score([text]), mean.score([text])
    packed = load_scorer(
        model_dir, device="cpu", max_segment_tokens=MAX_SEGMENT_TOKENS, pack_sentences=True
    )
    [alone] = packed.score([text])  # one segment holding the whole text
    _assert_valid(by_whole)
    # Sentences stay sentences; the text's own probabilities are those of the whole text.
    assert len(by_whole.segments) == len(by_mean.segments) == 3
    for label in SENTIMENT_LABELS:
        expected = alone.sentiment.probabilities[label]
        assert by_whole.sentiment.probabilities[label] == pytest.approx(expected, abs=1e-5)
    assert by_whole.sentiment.probabilities != pytest.approx(by_mean.sentiment.probabilities)
    # A text longer than one window keeps the token-weighted mean of its segments.
    long_text = " ".join(f"Sentence number {i} is here." for i in range(20))
    [long_whole], [long_mean] = whole.score([long_text]), mean.score([long_text])
    assert long_whole.sentiment.probabilities == pytest.approx(long_mean.sentiment.probabilities)
    # The same with the segment cache on (the whole text is one more cached span).
    cached = load_scorer(
        model_dir, device="cpu", max_segment_tokens=MAX_SEGMENT_TOKENS, segment_cache_size=64
    )
    for _ in range(2):
        [again] = cached.score([text])
        assert again.sentiment.probabilities == pytest.approx(alone.sentiment.probabilities)


def test_a_long_text_scored_in_pieces_combines_to_its_whole_score() -> None:
    from stream.config import SHIPPED_MODEL_DIR

    scorer = load_scorer(SHIPPED_MODEL_DIR, device="cpu", precision="fp32", backend="torch")
    sentences = [
        "I was thrilled when the results came in.",
        "Then the server crashed and we lost a day of work!",
        "Nobody knew what to do.",
        "Honestly, I am scared about the deadline.",
        "But the team pulled together, and we shipped it on time.",
    ]
    text = "\n\n".join(" ".join(sentences[i:] + sentences[:i]) for i in range(5))
    spans = scorer.split(text, 300)
    assert len(spans) > 2 and all(end - start <= 300 for start, end in spans)
    parts = [(start, scorer.score([text[start:end]])[0]) for start, end in spans]
    combined = scorer.combine(text, parts)
    whole = scorer.score([text])[0]
    assert [(s.start, s.end, s.tokens) for s in combined.segments] == [
        (s.start, s.end, s.tokens) for s in whole.segments
    ]
    for mine, theirs in ((combined.sentiment, whole.sentiment), (combined.emotion, whole.emotion)):
        assert mine.label == theirs.label
        for label, probability in theirs.probabilities.items():
            assert abs(mine.probabilities[label] - probability) < 1e-5
    assert abs(combined.emotion_intensity - whole.emotion_intensity) < 1e-5
    assert combined.tokens == whole.tokens


def test_texts_that_fit_one_window_are_never_split(tmp_path: Path) -> None:
    scorer = load_scorer(write_random_model(tmp_path / "m"), device="cpu", precision="fp32")
    short = "It rains. I am sad. Tomorrow will be better."
    assert scorer.split(short, 20) == []  # scored whole: its score is not a segment mean
    assert scorer.split("One sentence only, however long it is.", 10) == []
