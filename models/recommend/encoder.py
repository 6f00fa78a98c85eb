"""One batched pass of the scorer's own network over many short texts: both heads'
probabilities and the mean-pooled sentence embedding, for attribution and rescoring.

Suggestions reuse the loaded `TransformerScorer` (its network, tokenizer and device): no
second model is loaded. The embedding is the masked mean of the encoder's last hidden states,
the very vector the heads read, L2-normalised, so a cosine is one dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.inference import TransformerScorer, five_emotions
from models.network import masked_mean, pad_rows


@dataclass(frozen=True, slots=True)
class Forward:
    """Per input row: softmax probabilities of both heads and the unit embedding."""

    sentiment: np.ndarray  # (n, n_sentiment)
    emotion: np.ndarray  # (n, n_emotion)
    embedding: np.ndarray  # (n, hidden), rows of norm 1


class ModelAccess:
    """Runs the scorer's network; call from the model thread only (like `Scorer.score`)."""

    def __init__(self, scorer: TransformerScorer, max_rows: int = 64, max_tokens: int = 4096):
        if not isinstance(scorer, TransformerScorer):
            raise TypeError("suggestions need a TransformerScorer (its network and tokenizer)")
        self.scorer = scorer
        self.tokenizer = scorer.tokenizer
        self.tokenizer_lock = scorer.tokenizer_lock
        self.model = scorer.model
        self.device = scorer.device
        self.emotion_labels = scorer.emotion_labels
        self.sentiment_labels = scorer.sentiment_labels
        self.max_rows = max_rows
        self.max_tokens = max_tokens
        self.max_length = scorer.max_segment_tokens
        self.calls = 0  # model calls (sub-batches), for tests and cost accounting
        self.rows = 0

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with special tokens, cut to the scorer's segment length."""
        if not texts:
            return []
        with self.tokenizer_lock:
            out = self.tokenizer(
                list(texts), add_special_tokens=True, truncation=True, max_length=self.max_length
            )
        return list(out["input_ids"])

    def forward(self, texts: Sequence[str]) -> Forward:
        return self.forward_ids(self.encode(texts))

    def forward_ids(self, inputs: Sequence[list[int]]) -> Forward:
        n = len(inputs)
        hidden = int(self.model.encoder.config.hidden_size)
        sentiment = np.zeros((n, len(self.sentiment_labels)), np.float64)
        emotion = np.zeros((n, len(self.emotion_labels)), np.float64)
        embedding = np.zeros((n, hidden), np.float32)
        if n == 0:
            return Forward(sentiment, emotion, embedding)
        pad = int(self.tokenizer.pad_token_id or 0)
        order = sorted(range(n), key=lambda i: len(inputs[i]))
        batches: list[list[int]] = []
        for index in order:
            width = len(inputs[index])
            if batches and (
                len(batches[-1]) < self.max_rows
                and (len(batches[-1]) + 1) * width <= self.max_tokens
            ):
                batches[-1].append(index)
            else:
                batches.append([index])
        head_dtype = self.model.sentiment_head.weight.dtype
        with torch.inference_mode():
            for batch in batches:
                ids, mask = pad_rows([inputs[i] for i in batch], pad)
                ids, mask = ids.to(self.device), mask.to(self.device)
                states = self.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                pooled = masked_mean(states, mask).to(head_dtype)
                sentiment[batch] = torch.softmax(self.model.sentiment_head(pooled), -1).cpu()
                head = torch.softmax(self.model.emotion_head(pooled), -1).cpu().numpy()
                emotion[batch] = five_emotions(head, self.scorer.emotion_none_class)[0]
                unit = torch.nn.functional.normalize(pooled.float(), dim=-1)
                embedding[batch] = unit.cpu().numpy()
                self.calls += 1
                self.rows += len(batch)
        return Forward(sentiment, emotion, embedding)


class MeaningEncoder:
    """Sentence embeddings for meaning preservation: the backbone as shipped, untuned.

    The fine-tuned encoder's pooled vector is what the emotion heads read, so it moves with
    the emotion by design: "i feel sad" vs "i feel happy" are far apart there, which says
    nothing about meaning. all-MiniLM-L6-v2 as shipped was trained for sentence similarity
    (mean pooling, cosine), like the sentence encoders BAE and TextFooler use. It shares the
    scorer's tokenizer. A random test backbone (`config:`) has no such encoder: the scorer's
    own embeddings stand in.
    """

    def __init__(self, scorer: TransformerScorer, max_rows: int = 64):
        from models.backbone import CONFIG_PREFIX, build_encoder

        self.access = ModelAccess(scorer, max_rows=max_rows)
        self.max_rows = max_rows
        backbone = scorer.manifest.backbone
        self.encoder = None
        if not backbone.startswith(CONFIG_PREFIX):
            encoder = build_encoder(backbone).eval().to(scorer.device)
            if scorer.device.type == "cuda":
                encoder = encoder.half()
            self.encoder = encoder
        self.rows = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one per text."""
        if self.encoder is None:
            return self.access.forward(texts).embedding
        inputs = self.access.encode(texts)
        hidden = int(self.encoder.config.hidden_size)
        out = np.zeros((len(inputs), hidden), np.float32)
        pad = int(self.access.tokenizer.pad_token_id or 0)
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        device = self.access.device
        with torch.inference_mode():
            for first in range(0, len(order), self.max_rows):
                batch = order[first : first + self.max_rows]
                ids, mask = pad_rows([inputs[i] for i in batch], pad)
                ids, mask = ids.to(device), mask.to(device)
                states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                pooled = masked_mean(states, mask).float()
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        self.rows += len(inputs)
        return out
