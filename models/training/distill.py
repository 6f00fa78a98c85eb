"""Distil a trained Valence model (the teacher) into a shallower student.

The student is the teacher with only some encoder layers kept (default 0, 2, 5 of six), its
embeddings, kept layers and heads initialised from the teacher. It trains on the teacher's
training texts with

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))   (both heads)
         + (1 - alpha) * class-weighted cross-entropy on the example's own head.

The teacher's logits are computed once (and cached under runs/), so a step costs one student
forward + backward. The result is a normal model directory (fp16 safetensors + manifest with
`encoder_layers`), finalised like a trained model: `none` threshold tuned, validation metrics.

Run as ``python -m models.training.distill --help`` (every TrainConfig flag plus the
distillation ones).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from tqdm import tqdm

from models.artifact import WEIGHTS_NAME, ModelManifest, save_tensors
from models.backbone import load_tokenizer
from models.labels import EMOTION_HEAD_WITH_NONE, EMOTION_LABELS
from models.loading import build_network
from models.network import HeadLogits, SentimentEmotionModel, keep_encoder_layers
from models.training.calibrate import finalize_model
from models.training.data import REPO_ROOT, TASKS, sample_examples
from models.training.train import (
    Encoded,
    TrainConfig,
    _config_record,
    add_config_flags,
    batch_order,
    build_optimizer,
    class_weights,
    collate,
    encode_examples,
    linear_schedule,
    seed_everything,
    stored_keys,
)

log = logging.getLogger(__name__)


@dataclass
class DistillConfig(TrainConfig):
    """A TrainConfig (data, budget, optimiser) plus the teacher and the distillation knobs."""

    output_dir: Path = REPO_ROOT / "models" / "weights-student"
    teacher_dir: Path = REPO_ROOT / "models" / "weights"
    layers: str = "0,2,5"  # teacher layers the student keeps (see the model card's probe)
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft (KL) term; 1 - alpha on the hard labels
    logits_cache: Path | None = REPO_ROOT / "runs" / "distill" / "teacher-logits.pt"
    max_steps: int | None = 200
    lr: float = 1.5e-4
    head_lr: float = 3e-4
    name: str = "valence-minilm-l3-student"
    logits_only: bool = False  # compute and cache the teacher's logits, then stop

    def layer_indices(self) -> list[int]:
        return [int(part) for part in self.layers.split(",") if part.strip()]


def build_student(teacher: SentimentEmotionModel, layers: Sequence[int]) -> SentimentEmotionModel:
    """A deep copy of the teacher keeping only `layers` of its encoder."""
    student = copy.deepcopy(teacher)
    keep_encoder_layers(student.encoder, layers)
    return student


@torch.inference_mode()
def teacher_logits(
    teacher: SentimentEmotionModel,
    encoded: Sequence[Encoded],
    pad_id: int,
    rows: Sequence[int],
    batch_size: int = 128,
) -> HeadLogits:
    """The teacher's logits (eval mode, float32) for `rows` of `encoded`; other rows stay 0."""
    teacher.eval()
    order = sorted(rows, key=lambda i: len(encoded[i].input_ids))
    sentiment = torch.zeros((len(encoded), teacher.sentiment_head.out_features))
    emotion = torch.zeros((len(encoded), teacher.emotion_head.out_features))
    for first in tqdm(range(0, len(order), batch_size), desc="teacher", mininterval=10):
        chunk = order[first : first + batch_size]
        batch = collate([encoded[i] for i in chunk], pad_id)
        logits = teacher(batch["input_ids"], batch["attention_mask"])
        sentiment[chunk] = logits.sentiment.float()
        emotion[chunk] = logits.emotion.float()
    return HeadLogits(sentiment, emotion)


def _cached_teacher_logits(
    config: DistillConfig,
    teacher: SentimentEmotionModel,
    encoded: Sequence[Encoded],
    pad_id: int,
    rows: Sequence[int],
) -> HeadLogits:
    # The cache is valid for exactly these teacher weights and token sequences, and serves
    # any run whose rows it holds (a shorter budget sees a prefix of the same batches).
    digest = hashlib.sha256((config.teacher_dir / WEIGHTS_NAME).read_bytes())
    for item in encoded:
        digest.update(json.dumps(item.input_ids).encode())
    key = digest.hexdigest()[:16]
    cache = config.logits_cache
    if cache is not None and cache.is_file():
        payload = torch.load(cache, map_location="cpu", weights_only=True)
        if payload.get("key") == key and set(rows) <= set(payload["rows"].tolist()):
            log.info("teacher logits from %s", cache)
            return HeadLogits(payload["sentiment"], payload["emotion"])
    logits = teacher_logits(teacher, encoded, pad_id, rows)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "key": key,
                "rows": torch.tensor(list(rows)),
                "sentiment": logits.sentiment,
                "emotion": logits.emotion,
            },
            cache,
        )
    return logits


def distillation_loss(
    student: HeadLogits,
    teacher: HeadLogits,
    tasks: torch.Tensor,
    labels: torch.Tensor,
    hard_losses: Sequence[nn.Module],
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha * T^2 * KL over both heads (batch mean) + (1 - alpha) * hard CE (batch mean)."""
    soft = torch.zeros(())
    for s_head, t_head in zip(student, teacher, strict=True):
        soft = soft + functional.kl_div(
            functional.log_softmax(s_head / temperature, dim=-1),
            functional.softmax(t_head / temperature, dim=-1),
            reduction="batchmean",
        )
    hard = torch.zeros(())
    for task_index, (task, loss_fn) in enumerate(zip(TASKS, hard_losses, strict=True)):
        head = student.emotion if task == "emotion" else student.sentiment
        rows = tasks == task_index
        if rows.any():
            hard = hard + loss_fn(head[rows], labels[rows])
    hard = hard / len(labels)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


def distil(config: DistillConfig) -> Path:
    """Build, train, save and finalise the student; returns its model directory."""
    started = time.monotonic()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    teacher_manifest = ModelManifest.read(config.teacher_dir)
    if teacher_manifest.encoder_layers is not None:
        raise ValueError("the teacher must be a full model, not a student")
    tokenizer = load_tokenizer(teacher_manifest.tokenizer, config.teacher_dir)
    pad_id = int(tokenizer.pad_token_id or 0)
    emotion = sample_examples(
        config.emotion_train, "emotion", config.max_examples_per_task, config.seed
    )
    sentiment = sample_examples(
        config.sentiment_train, "sentiment", config.max_examples_per_task, config.seed
    )
    examples = emotion + sentiment
    encoded = encode_examples(examples, tokenizer, config.max_len)
    batches = batch_order(
        [len(e.input_ids) for e in encoded], config.batch_size, config.epochs, config.seed
    )
    total = len(batches) if config.max_steps is None else min(len(batches), config.max_steps)
    # Only the examples the student will see need the teacher's logits (a short budget sees
    # a fraction of the data).
    used = sorted({int(i) for batch in batches[:total] for i in batch})
    teacher = build_network(config.teacher_dir, teacher_manifest)
    soft = _cached_teacher_logits(config, teacher, encoded, pad_id, used)
    if config.logits_only:
        return config.output_dir

    layers = config.layer_indices()
    student = build_student(teacher, layers)
    del teacher
    student.dropout.p = config.dropout
    stored_params = teacher_manifest.stored_params
    if stored_params == "non_backbone":
        student.freeze_backbone_only()
    keys = stored_keys(student, stored_params)
    optimizer = build_optimizer(student, config)
    scheduler = linear_schedule(optimizer, total, config.warmup_ratio)
    # A teacher with a `none` class gives the student six emotion outputs; the hard labels
    # (CARER) never name `none`, so its weight is 1 (absent class).
    emotion_outputs = (
        EMOTION_HEAD_WITH_NONE if teacher_manifest.emotion_none_class else EMOTION_LABELS
    )
    weights = [
        class_weights(
            examples,
            task,
            config.class_weight_power,
            emotion_outputs if task == "emotion" else None,
        )
        for task in TASKS
    ]
    hard_losses = [nn.CrossEntropyLoss(weight=w, reduction="sum") for w in weights]
    student.train()
    train_started = time.monotonic()
    running: list[float] = []
    progress = tqdm(total=total, disable=not config.progress, desc="distil", mininterval=10)
    for step in range(total):
        rows = torch.as_tensor(batches[step])
        batch = collate([encoded[i] for i in batches[step]], pad_id)
        logits = student(batch["input_ids"], batch["attention_mask"])
        target = HeadLogits(soft.sentiment[rows], soft.emotion[rows])
        loss = distillation_loss(
            logits,
            target,
            batch["task"],
            batch["label"],
            hard_losses,
            config.temperature,
            config.alpha,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running = [*running[-49:], loss.item()]
        progress.update(1)
        progress.set_postfix(loss=f"{sum(running) / len(running):.4f}", refresh=False)
    progress.close()
    student.eval()

    state = student.state_dict()
    save_tensors({k: state[k] for k in keys}, config.output_dir)
    training: dict[str, Any] = {
        "config": _config_record(config),
        "method": "distillation",
        "teacher": f"{teacher_manifest.name} {teacher_manifest.version}",
        "steps": total,
        "examples": {"emotion": len(emotion), "sentiment": len(sentiment)},
        "examples_seen": len(used),
        "train_seconds_this_process": round(time.monotonic() - train_started, 1),
        "final_loss_mean_last_50": round(sum(running) / len(running), 4) if running else None,
        "stored_params": stored_params,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    ModelManifest(
        name=config.name,
        version=config.version,
        backbone=teacher_manifest.backbone,
        backbone_config=teacher_manifest.backbone_config,
        tokenizer=teacher_manifest.tokenizer,
        stored_params=stored_params,
        encoder_layers=layers,
        dropout=config.dropout,
        max_train_tokens=config.max_len,
        emotion_none_class=teacher_manifest.emotion_none_class,  # the copied head's width
        none_rule=teacher_manifest.none_rule,
        none_threshold=teacher_manifest.none_threshold,
        training=training,
    ).write(config.output_dir)
    finalize_model(config, train_started=started)
    return config.output_dir


def _parse_args(argv: Sequence[str] | None) -> DistillConfig:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.distill", description=__doc__.split("\n")[0]
    )
    add_config_flags(parser, DistillConfig(), skip=("extra", "backbone"))
    return DistillConfig(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: every DistillConfig field is a flag."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = _parse_args(argv)
    log.info("distilling with %s", json.dumps(asdict(config), default=str))
    log.info("student written to %s", distil(config))


if __name__ == "__main__":
    main()
