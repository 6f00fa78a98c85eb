"""The seed product's optimisation recipe, as an alternative to AdamW + linear decay.

SGD with Nesterov momentum, a one-cycle learning-rate policy (warm up from lr/25 to lr over
the first 30% of steps, anneal to lr/1e4 by cosine; momentum cycles 0.95 -> 0.85 -> 0.95) and
label smoothing written as a KL divergence to the smoothed target. `models/training/train.py` picks
it with `TrainConfig.optimizer = "sgd"`; the model card compares both at the same budget.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from models.network import SentimentEmotionModel


def parameter_groups(
    model: SentimentEmotionModel, lr: float, head_lr: float, weight_decay: float
) -> list[dict[str, object]]:
    """Encoder at `lr`, heads at `head_lr`; no decay on biases and LayerNorms."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_head = not name.startswith("encoder.")
        no_decay = parameter.ndim < 2
        groups.setdefault((is_head, no_decay), []).append(parameter)
    return [
        {
            "params": params,
            "lr": head_lr if is_head else lr,
            "weight_decay": 0.0 if no_decay else weight_decay,
        }
        for (is_head, no_decay), params in sorted(groups.items())
    ]


def build_sgd(
    model: SentimentEmotionModel, lr: float, head_lr: float, weight_decay: float, momentum: float
) -> torch.optim.SGD:
    """SGD with Nesterov momentum over the same parameter groups as AdamW."""
    return torch.optim.SGD(
        parameter_groups(model, lr, head_lr, weight_decay), momentum=momentum, nesterov=True
    )


def one_cycle(
    optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle policy peaking at each group's configured lr (torch's standard shape)."""
    peaks = [float(group["lr"]) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=peaks,
        total_steps=max(1, total_steps),
        pct_start=0.3,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
    )


def smoothed_kl_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float, weight: torch.Tensor | None
) -> torch.Tensor:
    """Summed KL(smoothed one-hot || softmax(logits)), each row scaled by its class weight.

    The smoothed target puts 1 - smoothing on the gold class and spreads `smoothing` evenly
    over all classes. KL differs from smoothed cross-entropy by the target's entropy, a
    constant, so the gradients are the same; the loss reads 0 at a perfect fit.
    """
    classes = logits.shape[-1]
    soft = torch.full_like(logits, smoothing / classes)
    soft.scatter_(1, target.unsqueeze(1), 1.0 - smoothing + smoothing / classes)
    per_row = functional.kl_div(functional.log_softmax(logits, dim=-1), soft, reduction="none").sum(
        dim=-1
    )
    if weight is not None:
        per_row = per_row * weight.to(per_row.dtype)[target]
    return per_row.sum()
