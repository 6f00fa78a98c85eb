"""Multi-task fine-tuning of the sentiment and emotion heads (and the encoder under them).

One run: CARER emotion examples and TweetEval sentiment examples are pooled and shuffled, so
every batch mixes both tasks; each example's loss is the cross-entropy of its own head. The
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

from models.artifact import PACKAGED_MINILM, ModelManifest, save_tensors
from models.backbone import CONFIG_PREFIX, build_encoder, load_tokenizer, tokenizer_reference
from models.network import BACKBONE_ONLY_PREFIXES, SentimentEmotionModel, pad_rows
from models.training.calibrate import finalize_model
from models.training.data import TASKS, Example, Task, read_examples, task_labels
from models.training.recipes import build_sgd, one_cycle, parameter_groups, smoothed_kl_loss

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


@dataclass
class TrainConfig:
    """Everything that decides a training run (recorded in the manifest's `training`)."""

    output_dir: Path = REPO_ROOT / "models" / "weights"
    emotion_train: Path = DATA_DIR / "emotion" / "train.jsonl"
    sentiment_train: Path = DATA_DIR / "sentiment" / "train.jsonl"
    # Validation sets scored after training; None skips one.
    emotion_validation: Path | None = DATA_DIR / "emotion" / "validation.jsonl"
    sentiment_validation: Path | None = DATA_DIR / "sentiment" / "validation.jsonl"
    goemotions_validation: Path | None = DATA_DIR / "goemotions" / "validation.jsonl"
    # Emotion data with neutral rows that tunes the `none` threshold (GoEmotions train, which
    # the model never trains on); None keeps `none_threshold`.
    none_calibration: Path | None = DATA_DIR / "goemotions" / "train.jsonl"
    none_calibration_examples: int = 4000
    none_threshold: float = 0.5
    # Tune the sentiment prior correction on this many TweetEval train rows that the seeded
    # sample above left out (0: none; models/training/calibrate.py).
    sentiment_calibration_examples: int = 4000
    backbone: str = PACKAGED_MINILM
    backbone_config: dict[str, Any] | None = None
    epochs: int = 1
    max_steps: int | None = None  # stop early (tests, smoke runs)
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
    """A tokenized training example: token ids (special tokens included), head, label."""

    input_ids: list[int]
    task_index: int
    label_index: int


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels where it has them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def sample_examples(path: Path, task: Task, limit: int | None, seed: int) -> list[Example]:
    """The task's examples, a seeded random subset of `limit` when there are more."""
    examples = read_examples(path, task, include_none=False)
    if limit is not None and len(examples) > limit:
        rng = random.Random(f"{seed}:{task}")
        examples = rng.sample(examples, limit)
    return examples


def encode_examples(
    examples: Sequence[Example], tokenizer: PreTrainedTokenizerFast, max_len: int
) -> list[Encoded]:
    """Tokenize once up front (truncated to `max_len`, unpadded)."""
    ids = tokenizer([e.text for e in examples], truncation=True, max_length=max_len, padding=False)[
        "input_ids"
    ]
    return [
        Encoded(list(tokens), TASKS.index(e.task), e.label_index)
        for tokens, e in zip(ids, examples, strict=True)
    ]


def class_weights(examples: Sequence[Example], task: Task, power: float) -> torch.Tensor:
    """Per-class loss weights (n / (k * n_c)) ** power; classes absent get weight 1."""
    labels = task_labels(task)
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
    batches: list[np.ndarray] = []
    lengths_array = np.asarray(lengths)
    pool = batch_size * pool_batches
    for epoch in range(epochs):
        rng = np.random.default_rng(seed + epoch)
        order = rng.permutation(len(lengths_array))
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
    model: SentimentEmotionModel, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser and learning-rate policy `config.optimizer` names."""
    if config.optimizer == "sgd":
        sgd = build_sgd(model, config.lr, config.head_lr, config.weight_decay, config.momentum)
        return sgd, one_cycle(sgd, total_steps)
    if config.optimizer != "adamw":
        raise ValueError(f"unknown optimizer {config.optimizer!r} (adamw or sgd)")
    adamw = build_optimizer(model, config)
    return adamw, linear_schedule(adamw, total_steps, config.warmup_ratio)


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def task_loss(weight: torch.Tensor, label_smoothing: float) -> LossFn:
    """Summed class-weighted loss of one head: cross-entropy, or smoothed KL when smoothing."""
    if label_smoothing > 0:
        return partial(smoothed_kl_loss, smoothing=label_smoothing, weight=weight)
    return nn.CrossEntropyLoss(weight=weight, reduction="sum")


def linear_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to each group's lr, then linear decay to 0 at `total_steps`."""
    warmup = max(1, math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

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
) -> None:
    state = model.state_dict()
    payload = {
        "step": step,
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
) -> int:
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
    return int(payload["step"])


def _stored_params_for(backbone: str) -> str:
    # A randomly initialised backbone cannot be rebuilt, so every weight must be stored.
    return "all" if backbone.startswith(CONFIG_PREFIX) else "non_backbone"


def fit(config: TrainConfig) -> tuple[SentimentEmotionModel, PreTrainedTokenizerFast, dict]:
    """Train the network; returns it (eval mode), its tokenizer and a run summary."""
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    tokenizer = load_tokenizer(tokenizer_reference(config.backbone))
    emotion = sample_examples(
        config.emotion_train, "emotion", config.max_examples_per_task, config.seed
    )
    sentiment = sample_examples(
        config.sentiment_train, "sentiment", config.max_examples_per_task, config.seed
    )
    examples = emotion + sentiment
    encoded = encode_examples(examples, tokenizer, config.max_len)
    weights = [class_weights(examples, task, config.class_weight_power) for task in TASKS]

    stored_params = _stored_params_for(config.backbone)
    model = SentimentEmotionModel(
        build_encoder(config.backbone, config.backbone_config), dropout=config.dropout
    )
    if stored_params == "non_backbone":
        model.freeze_backbone_only()
    keys = stored_keys(model, stored_params)

    batches = batch_order(
        [len(e.input_ids) for e in encoded], config.batch_size, config.epochs, config.seed
    )
    total_steps = len(batches) if config.max_steps is None else min(len(batches), config.max_steps)
    optimizer, scheduler = build_schedule(model, config, total_steps)
    checkpoint = config.resolved_checkpoint_dir() / "checkpoint.pt"
    fingerprint = config.fingerprint()
    step = 0
    if config.resume and checkpoint.is_file():
        step = _load_checkpoint(checkpoint, model, optimizer, scheduler, fingerprint)
        log.info("resumed from %s at step %d", checkpoint, step)

    pad_id = int(tokenizer.pad_token_id or 0)
    losses = [task_loss(w, config.label_smoothing) for w in weights]
    model.train()
    started = time.monotonic()
    progress = tqdm(
        total=total_steps,
        initial=step,
        disable=not config.progress,
        desc="train",
        mininterval=10,
        smoothing=0.05,
    )
    running: list[float] = []
    while step < total_steps:
        batch = collate([encoded[i] for i in batches[step]], pad_id)
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = torch.zeros(())
        for task_index, (task, loss_fn) in enumerate(zip(TASKS, losses, strict=True)):
            head_logits = logits.emotion if task == "emotion" else logits.sentiment
            rows = batch["task"] == task_index
            if rows.any():
                loss = loss + loss_fn(head_logits[rows], batch["label"][rows])
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
            _save_checkpoint(checkpoint, step, model, keys, optimizer, scheduler, fingerprint)
    progress.close()
    model.eval()
    summary = {
        "steps": total_steps,
        "examples": {"emotion": len(emotion), "sentiment": len(sentiment)},
        "train_seconds_this_process": round(time.monotonic() - started, 1),
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
