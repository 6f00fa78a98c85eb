"""`valence bench` options and flags (no heavy imports: the CLI builds its parser from this)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_OUTPUT = Path("bench-results")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    output_dir: Path | None = None  # None: bench-results/<device>
    rounds: int = 3  # model-only, pipeline and naive each measured once per round
    saturation_seconds: float = 20.0  # backlog size: about this long at model-only speed
    loads: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)  # fractions of saturated throughput
    load_seconds: float = 40.0
    naive: bool = True
    studies: bool = True  # batch sweep, sorting, threads, token counting, CPU backends
    sweep: tuple[int, ...] = (1, 4, 8, 16, 32, 64, 128)
    token_caps: tuple[int, ...] = (512, 1024, 2048, 4096, 8192)
    replay_sessions: int = 30  # editing sessions replayed for the segment cache
    precision_texts: int = 500  # validation rows per task for the CPU backends (0: skip)
    seed: int = 1
    workload: str = "mix"  # "mix" (realistic lengths) or "short" (~64 tokens, GPU targets)
    workers: int = 1  # worker processes in one consumer group (sharing the device)
    min_backlog: int = 320  # fewest events in one backlog (5 full default batches)
    max_backlog: int = 5000  # most events in one saturation backlog
    profile_seconds: float = 15.0  # py-spy the worker from the first saturation (0: no)
    quick: bool = False
    command: str = ""

    @classmethod
    def quick_mode(cls, **overrides: object) -> BenchOptions:
        """Under two minutes: one round, one load, no naive consumer, no studies."""
        quick = cls(
            rounds=1,
            saturation_seconds=8.0,
            min_backlog=128,
            loads=(0.7,),
            load_seconds=8.0,
            naive=False,
            studies=False,
            replay_sessions=0,
            precision_texts=0,
            profile_seconds=0.0,
            quick=True,
        )
        return replace(quick, **overrides)  # type: ignore[arg-type]


def _floats(value: str) -> tuple[float, ...]:
    return tuple(float(part) for part in value.split(",") if part.strip())


def _ints(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="CI mode, under two minutes.")
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="Instead: the gateway benchmark (typing in the page in chromium: send -> tint; "
        "the gateway against a direct Kafka producer). Default output: bench-results/gateway.",
    )
    parser.add_argument("--output-dir", type=Path, help="Default: bench-results/<cpu|cuda>.")
    parser.add_argument("--rounds", type=int, help="Repeats of model-only/pipeline/naive.")
    parser.add_argument(
        "--saturation-seconds", type=float, help="Backlog sized for about this long."
    )
    parser.add_argument(
        "--loads", type=_floats, help="Offered loads, fractions of saturation: 0.3,0.5,0.7,0.9"
    )
    parser.add_argument("--duration", type=float, help="Seconds of each offered load.")
    parser.add_argument("--no-naive", action="store_true", help="Skip the naive consumer.")
    parser.add_argument("--no-studies", action="store_true", help="Skip the model studies.")
    parser.add_argument("--sweep", type=_ints, help="max_events values of the batch sweep.")
    parser.add_argument("--replay-sessions", type=int, help="Editing sessions to replay.")
    parser.add_argument(
        "--precision-texts",
        type=int,
        help="Validation rows per task of the CPU backend comparison (0: skip).",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--workload", choices=["mix", "short"], help="Text lengths sent.")
    parser.add_argument("--workers", type=int, help="Worker processes in the consumer group.")
    parser.add_argument("--max-backlog", type=int, help="Most events in one backlog.")
    parser.add_argument(
        "--profile-seconds", type=float, help="py-spy the saturated worker this long (0: off)."
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="Instead: run the worker at 50%% of its saturation this long; report RSS growth "
        "after warm-up, lag and lost events (stream/bench/soak.py).",
    )


def options_from_args(args: argparse.Namespace, command: str) -> BenchOptions:
    given = {
        "output_dir": args.output_dir,
        "rounds": args.rounds,
        "saturation_seconds": args.saturation_seconds,
        "loads": args.loads,
        "load_seconds": args.duration,
        "sweep": args.sweep,
        "replay_sessions": args.replay_sessions,
        "precision_texts": args.precision_texts,
        "seed": args.seed,
        "workload": args.workload,
        "workers": args.workers,
        "max_backlog": args.max_backlog,
        "profile_seconds": args.profile_seconds,
    }
    overrides: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    if args.no_naive:
        overrides["naive"] = False
    if args.no_studies:
        overrides["studies"] = False
    overrides["command"] = command
    if args.quick:
        return BenchOptions.quick_mode(**overrides)
    return replace(BenchOptions(), **overrides)  # type: ignore[arg-type]
