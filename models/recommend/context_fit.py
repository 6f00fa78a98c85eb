"""Context fit of a rewrite: does the new word sit where the old one sat, in this sentence?

Two substitution-sensitive scores from one forward pass of the encoder over both sentences
(h = the concatenation of the middle layers' token states):

- `span`: cos(h(edited span | x), h(new span | x')), the contextual similarity of the
  replaced word and its replacement, each read in its own sentence. It ranks word swaps.
- `validation`: the validation score of Zhou et al., *BERT-based Lexical Substitution*
  (ACL 2019, eq. 2), sum_i w_i * cos(h(x_i | x), h(x'_i | x')) over the tokens i outside
  the edited span, w_i the attention the edited span pays to token i in the original
  (mean over heads and layers, renormalised). It says how much the rest of the sentence moved;
  it is the only score for insertions (a sentence adverb), which replace no word.

On 31 hand-labelled swaps (README of this package) `span` separated keepable from nonsense
swaps far better (ROC AUC 0.90) than `validation` (0.61) with this encoder; a
sentence-embedding cosine cannot see the difference at all (it stays above 0.85 when one word
of a sentence changes, whatever the word).

The encoder is the backbone as shipped (all-MiniLM-L6-v2, untuned), so the score does not
move with the emotion heads' training; no masked-LM head is needed. A random test backbone
(`config:`) uses the scorer's own encoder instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from models.network import pad_rows

# Middle layers: the bottom ones are close to the static word vectors, the top ones to the
# sentence-similarity objective all-MiniLM was trained for.
LAYERS = (2, 3)


@dataclass(frozen=True, slots=True)
class Pair:
    """A sentence, its rewrite, and the edited character spans in each."""

    before: str
    after: str
    span_before: tuple[int, int]
    span_after: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Fit:
    span: float  # contextual similarity of the replaced and the new span, in [-1, 1]
    validation: float  # Zhou et al.'s validation score over the rest of the sentence


class ContextFit:
    """Scores pairs in batches; call from the model thread only (it runs the encoder)."""

    def __init__(
        self,
        encoder: Any,
        tokenizer: Any,
        device: torch.device,
        max_rows: int = 64,
        tokenizer_lock: Any = None,
    ):
        self.encoder = encoder
        self.tokenizer = tokenizer
        # The scorer's lock when the tokenizer is its own (models/inference.py says why).
        self.tokenizer_lock = tokenizer_lock if tokenizer_lock is not None else threading.Lock()
        self.device = device
        self.max_rows = max_rows
        self.rows = 0  # encoder rows run, for cost accounting

    @classmethod
    def for_scorer(cls, scorer: Any) -> ContextFit:
        """The untuned backbone of the scorer's model (eager attention, so weights come back)."""
        from transformers import AutoModel

        from models.backbone import CONFIG_PREFIX, PACKAGE_PREFIX, packaged_model_path

        backbone = scorer.manifest.backbone
        if backbone.startswith(CONFIG_PREFIX):
            encoder = scorer.model.encoder
            encoder.config._attn_implementation = "eager"
        else:
            source = (
                packaged_model_path(backbone) if backbone.startswith(PACKAGE_PREFIX) else backbone
            )
            encoder = AutoModel.from_pretrained(
                source, local_files_only=True, attn_implementation="eager"
            ).float()
            encoder = encoder.eval().to(scorer.device)
        return cls(encoder, scorer.tokenizer, scorer.device, tokenizer_lock=scorer.tokenizer_lock)

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        with self.tokenizer_lock:
            out = self.tokenizer(
                list(texts), add_special_tokens=True, truncation=True, max_length=256,
                return_offsets_mapping=True,
            )  # fmt: skip
        return list(out["input_ids"]), [list(map(tuple, o)) for o in out["offset_mapping"]]

    def _states(self, inputs: list[list[int]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per row: (tokens x layers*hidden states, tokens x tokens mean attention)."""
        pad = int(self.tokenizer.pad_token_id or 0)
        results: list[tuple[torch.Tensor, torch.Tensor]] = [None] * len(inputs)  # type: ignore[list-item]
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        with torch.inference_mode():
            for first in range(0, len(order), self.max_rows):
                batch = order[first : first + self.max_rows]
                ids, mask = pad_rows([inputs[i] for i in batch], pad)
                out = self.encoder(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    output_hidden_states=True,
                    output_attentions=True,
                )
                states = torch.cat([out.hidden_states[k] for k in LAYERS], dim=-1).float()
                attention = torch.stack(out.attentions).float().mean(dim=(0, 2))  # b x t x t
                for row, index in enumerate(batch):
                    n = len(inputs[index])
                    results[index] = (states[row, :n].cpu(), attention[row, :n, :n].cpu())
                self.rows += len(batch)
        return results

    def scores(self, pairs: Sequence[Pair]) -> list[Fit]:
        """The fit of each pair (1, 1: the new span reads exactly as the old one did)."""
        if not pairs:
            return []
        texts = [p.before for p in pairs] + [p.after for p in pairs]
        ids, offsets = self._encode(texts)
        states = self._states(ids)
        n = len(pairs)
        return [
            _fit(states[k], offsets[k], states[n + k], offsets[n + k], pair)
            for k, pair in enumerate(pairs)
        ]


def _split(
    offsets: list[tuple[int, int]], span: tuple[int, int]
) -> tuple[list[int], list[int], list[int]]:
    """Token rows before, inside and after a character span (special tokens left out)."""
    before, inside, after = [], [], []
    for row, (start, end) in enumerate(offsets):
        if start == end:  # [CLS], [SEP]
            continue
        if end <= span[0]:
            before.append(row)
        elif start >= span[1]:
            after.append(row)
        else:
            inside.append(row)
    return before, inside, after


def _fit(
    old: tuple[torch.Tensor, torch.Tensor],
    old_offsets: list[tuple[int, int]],
    new: tuple[torch.Tensor, torch.Tensor],
    new_offsets: list[tuple[int, int]],
    pair: Pair,
) -> Fit:
    old_before, old_inside, old_after = _split(old_offsets, pair.span_before)
    new_before, new_inside, new_after = _split(new_offsets, pair.span_after)
    if len(old_before) != len(new_before) or len(old_after) != len(new_after):
        return Fit(-1.0, -1.0)  # the context itself was tokenised differently
    states_old, attention = old
    states_new, _ = new
    span = -1.0
    if old_inside and new_inside:
        span = float(
            torch.nn.functional.cosine_similarity(
                states_old[old_inside].mean(dim=0), states_new[new_inside].mean(dim=0), dim=0
            )
        )
    rows_old = old_before + old_after
    rows_new = new_before + new_after
    if not rows_old:
        return Fit(span, 1.0)  # nothing around the edit to disturb
    if old_inside:
        weights = attention[old_inside][:, rows_old].mean(dim=0)
    else:
        weights = torch.ones(len(rows_old))
    weights = weights / weights.sum().clamp_min(1e-9)
    cosines = torch.nn.functional.cosine_similarity(
        states_old[rows_old], states_new[rows_new], dim=-1
    )
    return Fit(span, float((weights * cosines).sum()))
