"""The network: a transformer encoder, masked mean pooling and two classification heads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import nn
from transformers import PreTrainedModel

from models.labels import EMOTION_LABELS, SENTIMENT_LABELS

# Encoder parameters that are never trained, so a saved model does not carry them: they are
# rebuilt from the backbone (the package or the hub copy). The pooler is unused because
# all-MiniLM-L6-v2 was trained with mean pooling and its pooler weights were never trained.
BACKBONE_ONLY_PREFIXES: tuple[str, ...] = (
    "encoder.embeddings.word_embeddings.",
    "encoder.pooler.",
)


class HeadLogits(NamedTuple):
    """Unnormalised scores of both heads for a batch."""

    sentiment: torch.Tensor  # (batch, len(SENTIMENT_LABELS))
    emotion: torch.Tensor  # (batch, len(EMOTION_LABELS))


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id rows padded to the longest one (dynamic padding): ids and attention mask."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row)
        mask[index, : len(row)] = 1
    return ids, mask


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states where the mask is 1 (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1.0)
    return summed / counts


class SentimentEmotionModel(nn.Module):
    """Encoder + mean pooling + dropout + a sentiment head and an emotion head.

    The encoder is any Hugging Face `AutoModel` whose output has `last_hidden_state`
    (BERT-style MiniLM or DistilBERT). Only `input_ids` and `attention_mask` are passed,
    because DistilBERT has no token type ids and BERT's default (all zeros) is what we want.
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        *,
        n_sentiment: int = len(SENTIMENT_LABELS),
        n_emotion: int = len(EMOTION_LABELS),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden_size = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden_size, n_sentiment)
        self.emotion_head = nn.Linear(hidden_size, n_emotion)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> HeadLogits:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(masked_mean(hidden, attention_mask))
        # Heads run in float32 whatever the encoder's precision, so fp16/bf16 encoders give
        # well-conditioned softmax inputs and int8 encoders keep float heads.
        pooled = pooled.to(self.sentiment_head.weight.dtype)
        return HeadLogits(self.sentiment_head(pooled), self.emotion_head(pooled))

    def freeze_backbone_only(self) -> None:
        """Stop gradients into the parameters a saved model does not store."""
        for name, parameter in self.named_parameters():
            if name.startswith(BACKBONE_ONLY_PREFIXES):
                parameter.requires_grad_(False)


def keep_encoder_layers(encoder: PreTrainedModel, layers: Sequence[int]) -> PreTrainedModel:
    """Keep only `layers` of the encoder's transformer stack, in order (student building).

    Works for BERT-style encoders (MiniLM: `encoder.layer`) and DistilBERT
    (`transformer.layer`); the config's layer count follows, so the model reloads alike.
    """
    stack: nn.Module
    if hasattr(encoder, "encoder") and hasattr(encoder.encoder, "layer"):
        stack = cast(nn.Module, encoder.encoder)
    elif hasattr(encoder, "transformer") and hasattr(encoder.transformer, "layer"):
        stack = cast(nn.Module, encoder.transformer)
    else:
        raise TypeError(f"cannot select layers of {type(encoder).__name__}")
    current = cast(nn.ModuleList, stack.layer)
    available = len(current)
    chosen = list(layers)
    if not chosen or chosen != sorted(set(chosen)) or not 0 <= chosen[0] <= chosen[-1] < available:
        raise ValueError(f"layers must be increasing indices in [0, {available}), got {chosen}")
    stack.layer = nn.ModuleList([current[i] for i in chosen])
    encoder.config.num_hidden_layers = len(chosen)
    return encoder
