"""Multi-task fine-tuning of the sentiment and emotion heads (and the encoder under them).

One run: a balanced mix of five sources is pooled and shuffled, so every batch mixes both
tasks; each example's loss is the cross-entropy of its own head. Each epoch draws a fixed
number of rows from every source (`*_per_epoch`), walking through a seeded permutation of the
source, so a large source is covered over the epochs instead of being cut to one subset:

- emotion: CARER, GoEmotions (grouped to the five emotions; `neutral` rows are the head's
  `none` class) and TweetEval emotion (optimism = joy);
- sentiment: TweetEval sentiment and SST-2, whose rows have no neutral class: for them the
  neutral logit is left out of the softmax (the loss is over negative/positive only), so no
  neutral label is invented.

Rows that tune the calibration afterwards (GoEmotions for the `none` threshold, TweetEval
sentiment for the prior correction; models/training/calibrate.py) are kept out of training. The
run may start from a trained model (`init_from`: its tensors, the emotion head widened by a
`none` row) and may be given a wall-clock budget (`time_budget_minutes`): the learning rate
then decays by whichever is further along, steps or time, and training stops when either
runs out, so a slow machine still ends on a fully decayed schedule. The
word embeddings stay frozen (they ship in the backbone package), AdamW with linear warmup and
decay (or the seed product's recipe, `--optimizer sgd`: Nesterov SGD, one-cycle, label
smoothing as KL; models/training/recipes.py), dynamic padding, seeded order and dropout, a
checkpoint
every N steps and resume.

After the last step the model is saved (fp16 safetensors + manifest), the `none` threshold is
tuned on emotion data that includes neutral text, and validation metrics are written into the
manifest (see models/training/calibrate.py and models/training/evaluation.py).

Run as ``python -m models.training.train --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from models.artifact import (
    NEUTRAL_SENTIMENT_RULE,
    NONE_CLASS_RULE,
    PACKAGED_MINILM,
    ModelManifest,
    save_tensors,
)
from models.backbone import CONFIG_PREFIX, build_encoder, load_tokenizer, tokenizer_reference
from models.labels import EMOTION_HEAD_WITH_NONE, EMOTION_LABELS, SENTIMENT_LABELS
from models.network import BACKBONE_ONLY_PREFIXES, SentimentEmotionModel, pad_rows
from models.training.calibrate import finalize_model
from models.training.data import (
    DATA_DIR,
    REPO_ROOT,
    TASKS,
    Example,
    Task,
    read_examples,
    task_labels,
)
from models.training.recipes import build_sgd, one_cycle, parameter_groups, smoothed_kl_loss

log = logging.getLogger(__name__)

SENTIMENT_NEUTRAL_INDEX = SENTIMENT_LABELS.index("neutral")


@dataclass
class TrainConfig:
    """Everything that decides a training run (recorded in the manifest's `training`)."""

    output_dir: Path = REPO_ROOT / "models" / "weights"
    emotion_train: Path = DATA_DIR / "emotion" / "train.jsonl"  # CARER
    sentiment_train: Path = DATA_DIR / "sentiment" / "train.jsonl"  # TweetEval sentiment
    # Further training sources; None leaves one out.
    goemotions_train: Path | None = DATA_DIR / "goemotions" / "train.jsonl"
    tweeteval_emotion_train: Path | None = DATA_DIR / "tweeteval-emotion" / "train.jsonl"
    sst2_train: Path | None = DATA_DIR / "sst2" / "train.jsonl"
    # Rows drawn from each source per epoch (0 leaves the source out; more than it has
    # repeats rows). The default mix weighs the out-of-CARER domains up.
    carer_per_epoch: int = 4000
    goemotions_per_epoch: int = 10000
    tweeteval_emotion_per_epoch: int = 1500
    sentiment_per_epoch: int = 10000
    sst2_per_epoch: int = 2000
    # The emotion head gets a sixth output, `none`, trained on GoEmotions' neutral rows.
    emotion_none_class: bool = True
    # Start from this trained model directory's tensors instead of the bare backbone.
    init_from: Path | None = None
    # Stop and finish the learning-rate decay within this many minutes of training (None: run
    # every planned step); see the module docstring.
    time_budget_minutes: float | None = None
    # Validation sets scored after training; None skips one.
    emotion_validation: Path | None = DATA_DIR / "emotion" / "validation.jsonl"
    sentiment_validation: Path | None = DATA_DIR / "sentiment" / "validation.jsonl"
    goemotions_validation: Path | None = DATA_DIR / "goemotions" / "validation.jsonl"
    tweeteval_emotion_validation: Path | None = DATA_DIR / "tweeteval-emotion" / "validation.jsonl"
    # Emotion data with neutral rows that tunes the `none` threshold (a seeded sample of
    # GoEmotions train, kept out of training); None keeps `none_threshold`.
    none_calibration: Path | None = DATA_DIR / "goemotions" / "train.jsonl"
    none_calibration_examples: int = 4000
    none_threshold: float = 0.5
    # Tune the sentiment prior correction on this many TweetEval train rows outside the
    # seeded `max_examples_per_task` sample, kept out of training (0: none).
    sentiment_calibration_examples: int = 4000
    backbone: str = PACKAGED_MINILM
    backbone_config: dict[str, Any] | None = None
    epochs: int = 1
    max_steps: int | None = None  # stop early (tests, smoke runs)
    # The seeded TweetEval sentiment sample whose complement holds the calibration rows (the
    # 1.0 model trained on that sample alone; models/training/calibrate.py).
    max_examples_per_task: int | None = 16000
    batch_size: int = 32
    # "adamw": AdamW, linear warmup (warmup_ratio) and decay. "sgd": the seed product's
    # recipe, Nesterov SGD (momentum) with a one-cycle policy peaking at lr / head_lr.
    optimizer: str = "adamw"
    lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    momentum: float = 0.9
    # > 0: label smoothing, the loss being KL(smoothed one-hot || prediction).
    label_smoothing: float = 0.0
    dropout: float = 0.1
    max_len: int = 64
    # Class weights (n / (k * n_c)) ** power per task: 0 disables, 0.5 softens the imbalance
    # (TweetEval negative, CARER surprise) that macro-recall punishes.
    class_weight_power: float = 0.5
    seed: int = 13
    torch_threads: int | None = 2
    checkpoint_dir: Path | None = None  # default: runs/<name>-checkpoints (git-ignored)
    checkpoint_every: int = 200
    resume: bool = False
    name: str = "valence-minilm-l6"
    version: str = "1.0.0"
    progress: bool = True

    def fingerprint(self) -> str:
        """Hash of the fields that must match for a checkpoint to be resumed."""
        keys = (
            "emotion_train",
            "sentiment_train",
            "goemotions_train",
            "tweeteval_emotion_train",
            "sst2_train",
            "carer_per_epoch",
            "goemotions_per_epoch",
            "tweeteval_emotion_per_epoch",
            "sentiment_per_epoch",
            "sst2_per_epoch",
            "emotion_none_class",
            "init_from",
            "none_calibration",
            "none_calibration_examples",
            "sentiment_calibration_examples",
            "backbone",
            "backbone_config",
            "epochs",
            "max_examples_per_task",
            "batch_size",
            "optimizer",
            "momentum",
            "label_smoothing",
            "lr",
            "head_lr",
            "weight_decay",
            "warmup_ratio",
            "dropout",
            "max_len",
            "class_weight_power",
            "seed",
        )
        material = json.dumps({k: str(getattr(self, k)) for k in keys}, sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def resolved_checkpoint_dir(self) -> Path:
        if self.checkpoint_dir is not None:
            return self.checkpoint_dir
        return REPO_ROOT / "runs" / f"{self.name}-checkpoints"


@dataclass(frozen=True, slots=True)
class Encoded:
    """A tokenized training example: token ids (special tokens included), head, label, and
    whether the sentiment head's neutral output is left out of its loss (SST-2 rows)."""

    input_ids: list[int]
    task_index: int
    label_index: int
    mask_neutral: bool = False


@dataclass(frozen=True, slots=True)
class Source:
    """One training data set: its usable rows and how many of them each epoch draws."""

    name: str
    examples: list[Example]
    per_epoch: int
    mask_neutral: bool = False  # no neutral class in the data (SST-2)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels where it has them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def encode_examples(
    examples: Sequence[Example],
    tokenizer: PreTrainedTokenizerFast,
    max_len: int,
    *,
    mask_neutral: bool = False,
) -> list[Encoded]:
    """Tokenize once up front (truncated to `max_len`, unpadded)."""
    if not examples:
        return []
    ids = tokenizer([e.text for e in examples], truncation=True, max_length=max_len, padding=False)[
        "input_ids"
    ]
    return [
        Encoded(list(tokens), TASKS.index(e.task), e.label_index, mask_neutral)
        for tokens, e in zip(ids, examples, strict=True)
    ]


def load_sources(config: TrainConfig) -> list[Source]:
    """The training sources, calibration rows removed; sources drawing 0 rows are left out."""
    from models.training.calibrate import heldout_sentiment_examples, none_calibration_examples

    reserved: set[str] = set()
    if config.none_calibration is not None:
        reserved |= {
            e.text
            for e in none_calibration_examples(
                config.none_calibration, config.none_calibration_examples, config.seed
            )
        }
    if config.sentiment_calibration_examples > 0:
        reserved |= {
            e.text
            for e in heldout_sentiment_examples(
                config.sentiment_train,
                config.max_examples_per_task,
                config.seed,
                config.sentiment_calibration_examples,
            )
        }

    def usable(path: Path | None, task: Task, *, include_none: bool = False) -> list[Example]:
        if path is None:
            return []
        return [
            e
            for e in read_examples(path, task, include_none=include_none)
            if e.text not in reserved
        ]

    sources = [
        Source("carer", usable(config.emotion_train, "emotion"), config.carer_per_epoch),
        Source(
            "goemotions",
            usable(config.goemotions_train, "emotion", include_none=config.emotion_none_class),
            config.goemotions_per_epoch,
        ),
        Source(
            "tweeteval_emotion",
            usable(config.tweeteval_emotion_train, "emotion"),
            config.tweeteval_emotion_per_epoch,
        ),
        Source(
            "tweeteval_sentiment",
            usable(config.sentiment_train, "sentiment"),
            config.sentiment_per_epoch,
        ),
        Source(
            "sst2",
            [e for e in usable(config.sst2_train, "sentiment") if e.label != "neutral"],
            config.sst2_per_epoch,
            mask_neutral=True,
        ),
    ]
    for source in sources:
        if source.per_epoch > 0 and not source.examples:
            raise ValueError(f"training source {source.name} has no usable rows")
    return [s for s in sources if s.per_epoch > 0]


def epoch_draws(
    sizes: Sequence[int], per_epoch: Sequence[int], epochs: int, seed: int
) -> list[list[np.ndarray]]:
    """For each epoch, the row indices drawn from each source.

    A source is read along a seeded permutation, epoch after epoch (a fresh permutation when
    one is used up), so a source larger than its per-epoch draw shows new rows each epoch and
    every row once before any row twice.
    """
    draws: list[list[np.ndarray]] = [[] for _ in range(epochs)]
    for index, (size, count) in enumerate(zip(sizes, per_epoch, strict=True)):
        rng = np.random.default_rng([seed, index])
        needed = count * epochs
        stream = np.concatenate(
            [rng.permutation(size) for _ in range(max(1, math.ceil(needed / max(1, size))))]
        )
        for epoch in range(epochs):
            draws[epoch].append(stream[epoch * count : (epoch + 1) * count])
    return draws


def class_weights(
    examples: Sequence[Example], task: Task, power: float, labels: Sequence[str] | None = None
) -> torch.Tensor:
    """Per-class loss weights (n / (k * n_c)) ** power over `labels` (default: the task's);
    classes absent get weight 1."""
    labels = task_labels(task) if labels is None else labels
    counts = Counter(e.label for e in examples if e.task == task)
    total = sum(counts.values())
    weights = [
        (total / (len(labels) * counts[label])) ** power if counts[label] else 1.0
        for label in labels
    ]
    return torch.tensor(weights, dtype=torch.float32)


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest example of this batch (dynamic padding)."""
    input_ids, attention_mask = pad_rows([item.input_ids for item in batch], pad_id)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "task": torch.tensor([item.task_index for item in batch]),
        "label": torch.tensor([item.label_index for item in batch]),
        "mask_neutral": torch.tensor([item.mask_neutral for item in batch], dtype=torch.bool),
    }


def batch_order(
    lengths: Sequence[int], batch_size: int, epochs: int, seed: int, *, pool_batches: int = 50
) -> list[np.ndarray]:
    """Index batches for the whole run, seeded, with length bucketing.

    Each epoch is a fresh permutation cut into pools of `pool_batches` batches; a pool is
    sorted by length before it is cut, so a batch holds similar lengths and dynamic padding
    pads little (about halving CPU time here), then the batches are shuffled. Computed up front
    so a resumed run skips to exactly the batches it had not seen.
    """
    every = np.arange(len(lengths))
    return mixed_batch_order(lengths, [every] * epochs, batch_size, seed, pool_batches=pool_batches)


def mixed_batch_order(
    lengths: Sequence[int],
    epoch_rows: Sequence[np.ndarray],
    batch_size: int,
    seed: int,
    *,
    pool_batches: int = 50,
) -> list[np.ndarray]:
    """`batch_order` over the rows each epoch draws (`epoch_rows[e]`, indices into
    `lengths`): each epoch's rows shuffled, length-bucketed in pools, batches shuffled."""
    batches: list[np.ndarray] = []
    lengths_array = np.asarray(lengths)
    pool = batch_size * pool_batches
    for epoch, rows in enumerate(epoch_rows):
        rng = np.random.default_rng(seed + epoch)
        order = np.asarray(rows)[rng.permutation(len(rows))]
        epoch_batches: list[np.ndarray] = []
        for first in range(0, len(order), pool):
            chunk = order[first : first + pool]
            chunk = chunk[np.argsort(lengths_array[chunk], kind="stable")]
            epoch_batches.extend(
                chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)
            )
        batches.extend(epoch_batches[i] for i in rng.permutation(len(epoch_batches)))
    return batches


def build_optimizer(model: SentimentEmotionModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW: encoder at `lr`, heads at `head_lr`; no decay on biases and LayerNorms."""
    return torch.optim.AdamW(
        parameter_groups(model, config.lr, config.head_lr, config.weight_decay)
    )


def build_schedule(
    model: SentimentEmotionModel,
    config: TrainConfig,
    total_steps: int,
    time_used: Callable[[], float] | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser and learning-rate policy `config.optimizer` names (`time_used`: the
    share of the wall-clock budget spent, for AdamW's decay)."""
    if config.optimizer == "sgd":
        if time_used is not None:
            raise ValueError("a time budget needs --optimizer adamw (one-cycle is step-based)")
        sgd = build_sgd(model, config.lr, config.head_lr, config.weight_decay, config.momentum)
        return sgd, one_cycle(sgd, total_steps)
    if config.optimizer != "adamw":
        raise ValueError(f"unknown optimizer {config.optimizer!r} (adamw or sgd)")
    adamw = build_optimizer(model, config)
    return adamw, linear_schedule(adamw, total_steps, config.warmup_ratio, time_used)


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def task_loss(weight: torch.Tensor, label_smoothing: float) -> LossFn:
    """Summed class-weighted loss of one head: cross-entropy, or smoothed KL when smoothing."""
    if label_smoothing > 0:
        return partial(smoothed_kl_loss, smoothing=label_smoothing, weight=weight)
    return nn.CrossEntropyLoss(weight=weight, reduction="sum")


def linear_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_ratio: float,
    time_used: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to each group's lr, then linear decay to 0 at `total_steps`, or sooner
    when `time_used()` (the share of a wall-clock budget spent) is further along."""
    warmup = max(1, math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        remaining = (total_steps - step) / max(1, total_steps - warmup)
        if time_used is not None:
            remaining = min(remaining, 1.0 - time_used())
        return max(0.0, remaining)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def stored_keys(model: SentimentEmotionModel, stored_params: str) -> list[str]:
    """State-dict keys a saved model carries (all, or all but the backbone-only ones)."""
    keys = list(model.state_dict())
    if stored_params == "all":
        return keys
    return [k for k in keys if not k.startswith(BACKBONE_ONLY_PREFIXES)]


def _save_checkpoint(
    path: Path,
    step: int,
    model: SentimentEmotionModel,
    keys: list[str],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    fingerprint: str,
    elapsed_s: float = 0.0,
) -> None:
    state = model.state_dict()
    payload = {
        "step": step,
        "elapsed_s": elapsed_s,
        "fingerprint": fingerprint,
        "model": {k: state[k].detach().clone() for k in keys},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)  # atomic: a crash mid-save keeps the previous checkpoint


def _load_checkpoint(
    path: Path,
    model: SentimentEmotionModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    fingerprint: str,
) -> tuple[int, float]:
    """Restore a checkpoint; returns its step and the training seconds spent before it."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload["fingerprint"] != fingerprint:
        raise ValueError(f"{path} was written by a run with different settings; not resuming")
    missing = set(payload["model"]) - set(model.state_dict())
    if missing:
        raise ValueError(f"{path}: checkpoint keys not in the model: {sorted(missing)[:5]}")
    model.load_state_dict(payload["model"], strict=False)
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["torch_rng"])
    return int(payload["step"]), float(payload.get("elapsed_s", 0.0))


def _stored_params_for(backbone: str) -> str:
    # A randomly initialised backbone cannot be rebuilt, so every weight must be stored.
    return "all" if backbone.startswith(CONFIG_PREFIX) else "non_backbone"


def warm_start(model: SentimentEmotionModel, model_dir: Path) -> list[str]:
    """Load a trained model's tensors into `model` (same backbone); returns what was widened.

    A five-way emotion head going into a head with a `none` class keeps its five rows; the
    `none` row starts at zero (uniform against the others) and is learned from GoEmotions'
    neutral rows.
    """
    from models.loading import build_network

    manifest = ModelManifest.read(model_dir)
    if manifest.encoder_layers is not None:
        raise ValueError(f"{model_dir} is a distilled student; start from a full model")
    source = build_network(model_dir, manifest).state_dict()
    target = model.state_dict()
    widened: list[str] = []
    with torch.no_grad():
        for key, value in source.items():
            if key not in target:
                raise ValueError(f"{model_dir}: {key} has no place in the new network")
            if value.shape == target[key].shape:
                target[key].copy_(value)
            elif key.startswith("emotion_head.") and value.shape[1:] == target[key].shape[1:]:
                rows = min(value.shape[0], target[key].shape[0])
                target[key].zero_()
                target[key][:rows].copy_(value[:rows])
                widened.append(key)
            else:
                raise ValueError(f"{model_dir}: {key} has shape {tuple(value.shape)}")
    return widened


def head_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    mask_neutral: torch.Tensor,
    loss_fn: LossFn,
    masked_loss_fn: LossFn | None,
) -> torch.Tensor:
    """Summed loss of one head's rows; rows with `mask_neutral` (sentiment data without a
    neutral class) are scored over the non-neutral outputs only, labels re-indexed."""
    plain = ~mask_neutral
    loss = loss_fn(logits[plain], labels[plain]) if plain.any() else torch.zeros(())
    if mask_neutral.any():
        if masked_loss_fn is None:
            raise ValueError("rows without a neutral class reached a head that has none")
        neutral = SENTIMENT_NEUTRAL_INDEX
        keep = [k for k in range(logits.shape[1]) if k != neutral]
        rows = logits[mask_neutral][:, keep]
        targets = labels[mask_neutral]
        if (targets == neutral).any():
            raise ValueError("a row without a neutral class is labelled neutral")
        loss = loss + masked_loss_fn(rows, targets - (targets > neutral).long())
    return loss


def fit(config: TrainConfig) -> tuple[SentimentEmotionModel, PreTrainedTokenizerFast, dict]:
    """Train the network; returns it (eval mode), its tokenizer and a run summary."""
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    tokenizer = load_tokenizer(tokenizer_reference(config.backbone))
    sources = load_sources(config)
    examples = [e for source in sources for e in source.examples]
    encoded = [
        item
        for source in sources
        for item in encode_examples(
            source.examples, tokenizer, config.max_len, mask_neutral=source.mask_neutral
        )
    ]
    offsets = np.cumsum([0, *[len(source.examples) for source in sources]])
    draws = epoch_draws(
        [len(source.examples) for source in sources],
        [source.per_epoch for source in sources],
        config.epochs,
        config.seed,
    )
    epoch_rows = [
        np.concatenate([rows + offsets[k] for k, rows in enumerate(epoch)]) for epoch in draws
    ]
    drawn = [examples[i] for rows in epoch_rows for i in rows]
    emotion_outputs = EMOTION_HEAD_WITH_NONE if config.emotion_none_class else EMOTION_LABELS
    weights = {
        "emotion": class_weights(drawn, "emotion", config.class_weight_power, emotion_outputs),
        "sentiment": class_weights(drawn, "sentiment", config.class_weight_power),
    }

    stored_params = _stored_params_for(config.backbone)
    model = SentimentEmotionModel(
        build_encoder(config.backbone, config.backbone_config),
        n_emotion=len(emotion_outputs),
        dropout=config.dropout,
    )
    widened = warm_start(model, config.init_from) if config.init_from is not None else []
    if stored_params == "non_backbone":
        model.freeze_backbone_only()
    keys = stored_keys(model, stored_params)

    batches = mixed_batch_order(
        [len(e.input_ids) for e in encoded], epoch_rows, config.batch_size, config.seed
    )
    total_steps = len(batches) if config.max_steps is None else min(len(batches), config.max_steps)
    budget_s = None if config.time_budget_minutes is None else config.time_budget_minutes * 60
    spent_before = 0.0
    started = time.monotonic()

    def time_used() -> float:
        assert budget_s is not None
        return (spent_before + time.monotonic() - started) / budget_s

    optimizer, scheduler = build_schedule(
        model, config, total_steps, time_used if budget_s is not None else None
    )
    checkpoint = config.resolved_checkpoint_dir() / "checkpoint.pt"
    fingerprint = config.fingerprint()
    step = 0
    if config.resume and checkpoint.is_file():
        step, spent_before = _load_checkpoint(checkpoint, model, optimizer, scheduler, fingerprint)
        log.info(
            "resumed from %s at step %d (%.0f s trained before)", checkpoint, step, spent_before
        )

    pad_id = int(tokenizer.pad_token_id or 0)
    losses = {task: task_loss(weights[task], config.label_smoothing) for task in TASKS}
    keep = [k for k in range(len(SENTIMENT_LABELS)) if k != SENTIMENT_NEUTRAL_INDEX]
    masked_sentiment_loss = task_loss(weights["sentiment"][keep], config.label_smoothing)
    model.train()
    progress = tqdm(
        total=total_steps,
        initial=step,
        disable=not config.progress,
        desc="train",
        mininterval=10,
        smoothing=0.05,
    )
    running: list[float] = []
    stopped_by_budget = False
    while step < total_steps:
        if budget_s is not None and time_used() >= 1.0:
            stopped_by_budget = True
            break
        batch = collate([encoded[i] for i in batches[step]], pad_id)
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = torch.zeros(())
        for task_index, task in enumerate(TASKS):
            rows = batch["task"] == task_index
            if rows.any():
                head_logits = logits.emotion if task == "emotion" else logits.sentiment
                loss = loss + head_loss(
                    head_logits[rows],
                    batch["label"][rows],
                    batch["mask_neutral"][rows],
                    losses[task],
                    masked_sentiment_loss if task == "sentiment" else None,
                )
        loss = loss / len(batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        running = [*running[-49:], loss.item()]
        progress.update(1)
        progress.set_postfix(loss=f"{sum(running) / len(running):.4f}", refresh=False)
        if step % config.checkpoint_every == 0 or step == total_steps:
            elapsed = spent_before + time.monotonic() - started
            _save_checkpoint(
                checkpoint, step, model, keys, optimizer, scheduler, fingerprint, elapsed
            )
    progress.close()
    model.eval()
    trained_s = spent_before + time.monotonic() - started
    summary = {
        "steps": step,
        "planned_steps": total_steps,
        "stopped_by_time_budget": stopped_by_budget,
        "examples": {source.name: len(source.examples) for source in sources},
        "drawn_per_epoch": {source.name: source.per_epoch for source in sources},
        "examples_seen": step * config.batch_size,
        "init_from": None if config.init_from is None else str(config.init_from),
        "widened_from_init": widened,
        "class_weights": {task: [round(float(w), 4) for w in weights[task]] for task in TASKS},
        "train_seconds_this_process": round(time.monotonic() - started, 1),
        "train_seconds_total": round(trained_s, 1),
        "final_loss_mean_last_50": round(sum(running) / len(running), 4) if running else None,
        "stored_params": stored_params,
        "stored_keys": keys,
    }
    return model, tokenizer, summary


def save_model(
    model: SentimentEmotionModel,
    config: TrainConfig,
    stored_params: str,
    keys: Sequence[str],
    training: dict[str, Any],
) -> ModelManifest:
    """Write the model directory: fp16 safetensors of `keys` and the manifest."""
    state = model.state_dict()
    save_tensors({k: state[k] for k in keys}, config.output_dir)
    manifest = ModelManifest(
        name=config.name,
        version=config.version,
        backbone=config.backbone,
        backbone_config=config.backbone_config,
        tokenizer=tokenizer_reference(config.backbone),
        stored_params=stored_params,  # type: ignore[arg-type]
        dropout=config.dropout,
        max_train_tokens=config.max_len,
        emotion_none_class=config.emotion_none_class,
        none_rule=NONE_CLASS_RULE if config.emotion_none_class else NEUTRAL_SENTIMENT_RULE,
        none_threshold=config.none_threshold,
        training=training,
    )
    manifest.write(config.output_dir)
    return manifest


def _config_record(config: TrainConfig) -> dict[str, Any]:
    record = {}
    for item in fields(config):
        value = getattr(config, item.name)
        if isinstance(value, Path):
            try:
                value = str(value.resolve().relative_to(REPO_ROOT))
            except ValueError:
                value = str(value)
        record[item.name] = value
    return record


def train(config: TrainConfig) -> Path:
    """Fine-tune, save, tune the `none` threshold and evaluate; returns the model directory.

    The manifest's `training` records the configuration, example counts and wall time, and its
    `metrics` the validation results of the saved (fp16) model as `load_scorer` loads it.
    """
    started = time.monotonic()
    model, _tokenizer, summary = fit(config)
    keys = summary.pop("stored_keys")
    training = {
        "config": _config_record(config),
        **summary,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    save_model(model, config, summary["stored_params"], keys, training)
    del model
    finalize_model(config, train_started=started)
    return config.output_dir


def add_config_flags(
    parser: argparse.ArgumentParser, defaults: TrainConfig, skip: Sequence[str] = ()
) -> None:
    """One `--flag` per field of `defaults`' dataclass (except `skip`), defaulting to it."""
    for item in fields(defaults):
        if item.name in ("backbone_config", *skip):
            continue
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif item.name in ("max_steps", "max_examples_per_task", "torch_threads"):
            parser.add_argument(flag, type=_optional_int, default=default)
        elif item.name == "time_budget_minutes":
            parser.add_argument(flag, type=_optional_float, default=default)
        elif isinstance(default, Path) or "Path" in str(item.type):
            parser.add_argument(flag, type=_optional_path, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)


def _parse_args(argv: Sequence[str] | None) -> TrainConfig:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.train", description=__doc__.split("\n")[0]
    )
    add_config_flags(parser, TrainConfig())
    return TrainConfig(**vars(parser.parse_args(argv)))


def _optional_int(value: str) -> int | None:
    return None if value.lower() in ("none", "") else int(value)


def _optional_float(value: str) -> float | None:
    return None if value.lower() in ("none", "") else float(value)


def _optional_path(value: str) -> Path | None:
    return None if value.lower() in ("none", "") else Path(value)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: every TrainConfig field is a flag."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = _parse_args(argv)
    log.info("training with %s", json.dumps(asdict(config), default=str))
    output = train(config)
    log.info("model written to %s", output)


if __name__ == "__main__":
    main()
