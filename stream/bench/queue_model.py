"""The batcher's waiting room under Poisson load, in simulated time: no broker, no model.

Runs the worker's own `WaitingRoom` with an injected clock against the benchmark's
realistic mix (documents over the CPU piece size cut into equal pieces; the worker cuts at
sentences), with a model call costing `call_s + tokens / tokens_per_s` (defaults: roughly
this 2-core CPU's int8 model).
It isolates the scheduling rule from everything else on the machine, so a policy change can
be judged over many seeds in seconds; the real figures come from
`python -m stream.bench.scheduling`.

Run: ``python -m stream.bench.queue_model --rate 18 --streaks 0 1 2 --seeds 1 2 3``.
"""

from __future__ import annotations

import argparse
import math
import random

import numpy as np

from stream.batching import DEFAULT_SPLIT_TOKENS, BatchPolicy, WaitingRoom, estimate_tokens
from stream.bench.workload import sentence_pool, texts_for

SHORT_TOKENS = 60  # about one sentence
PARAGRAPH_TOKENS = 250


def simulate(
    policy: BatchPolicy,
    rate: float,
    events: int = 3000,
    seed: int = 1,
    call_s: float = 0.015,
    tokens_per_s: float = 3430.0,
    split_tokens: int = DEFAULT_SPLIT_TOKENS["cpu"],
) -> dict[str, float]:
    """p50 / p99 latency (ms) of all, sentence-sized and paragraph-sized events."""
    tokens = [
        estimate_tokens(text) for text in texts_for("mix", events, sentence_pool(seed=5), seed)
    ]
    rng = random.Random(seed)
    arrivals, at = [], 0.0
    for index, count in enumerate(tokens):
        at += rng.expovariate(rate)
        arrivals.append((at, index, count))
    now = 0.0
    room: WaitingRoom[tuple[int, float]] = WaitingRoom(policy, clock=lambda: now)
    pieces_left: dict[int, int] = {}
    latency: dict[int, float] = {}
    next_arrival = 0
    while len(latency) < events:
        while next_arrival < events and arrivals[next_arrival][0] <= now:
            arrived, index, count = arrivals[next_arrival]
            next_arrival += 1
            pieces = math.ceil(count / split_tokens) if split_tokens and count > split_tokens else 1
            pieces_left[index] = pieces
            for _ in range(pieces):
                room.add((index, arrived), count // pieces, key=index, alone=pieces > 1)
        if len(room) and room.should_flush(model_idle=True):
            batch = room.take()
            now += call_s + batch.tokens / tokens_per_s
            for index, arrived in batch.items:
                pieces_left[index] -= 1
                if not pieces_left[index]:
                    latency[index] = now - arrived
        else:
            now = arrivals[next_arrival][0]
    groups = {
        "all": [latency[i] for i in range(events)],
        "sentence": [latency[i] for i in range(events) if tokens[i] <= SHORT_TOKENS],
        "paragraph": [
            latency[i] for i in range(events) if SHORT_TOKENS < tokens[i] <= PARAGRAPH_TOKENS
        ],
    }
    out: dict[str, float] = {}
    for name, values in groups.items():
        p50, p99 = np.percentile(np.asarray(values) * 1000, [50, 99])
        out[f"{name}_p50"], out[f"{name}_p99"] = round(float(p50)), round(float(p99))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.bench.queue_model")
    parser.add_argument("--rate", type=float, default=18.0, help="Offered events/s.")
    parser.add_argument("--streaks", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    print(
        "| max_overdue_streak | seed | all p50 / p99 | sentence p50 / p99 | paragraph p50 / p99 |"
    )
    print("|---|---|---|---|---|")
    for streak in args.streaks:
        for seed in args.seeds:
            policy = BatchPolicy(max_tokens=2048, max_overdue_streak=streak)
            r = simulate(policy, args.rate, seed=seed)
            print(
                f"| {streak} | {seed} | {r['all_p50']} / {r['all_p99']} "
                f"| {r['sentence_p50']} / {r['sentence_p99']} "
                f"| {r['paragraph_p50']} / {r['paragraph_p99']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
