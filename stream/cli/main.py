"""`valence`: a thin command line over the worker, the local broker and the models.

Every `Settings` field is also a flag (`--batch-max-events 32` = VALENCE_BATCH_MAX_EVENTS=32);
flags win over the environment. Errors print one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
from pydantic import ValidationError

from schemas.events import EMOTIONS
from stream.cli.output import summary_line
from stream.config import Settings
from stream.errors import ValenceError

SAMPLE_EVENTS = Path(__file__).resolve().parent.parent / "samples" / "editor_events.jsonl"

Command = Callable[[argparse.Namespace, Settings], int]


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (also VALENCE_<NAME> environment variables)")
    for name, field in Settings.model_fields.items():
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"setting_{name}",
            default=None,
            metavar="V",
            # argparse %-formats help strings: a literal % in a description must be doubled.
            help=f"{field.description} (default: {field.default})".replace("%", "%%"),
        )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    return Settings(**overrides)


# --- commands ------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream.worker import run_worker

    return run_worker(settings)


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from stream.gateway.server import run_gateway

    return run_gateway(settings)


def cmd_kafka(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from deploy.kafka import launcher

    if args.action == "start":
        status = launcher.start(settings, secure=args.secure)
    else:
        status = {"stop": launcher.stop, "status": launcher.status}[args.action](settings)
    state = "running" if status.running else "stopped"
    print(f"kafka {state}: {orjson.dumps(asdict(status), default=str).decode()}")
    if args.secure and status.running:
        from deploy.kafka import secure

        print("secure listener (SASL_SSL, SCRAM-SHA-512); clients use:")
        for name, value in secure.client_settings(settings).items():
            print(f"  export {name}={value}")
    return 0 if status.running or args.action == "stop" else 3


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.client import editor_event, read_event_file, send_events
    from stream.topics import ensure_topics

    if args.file:
        events, rejected = read_event_file(Path(args.file), settings)
        for line in rejected:
            print(f"{args.file}:{line.line}: {line.reason}: {line.detail}", file=sys.stderr)
        if rejected and not args.skip_invalid:
            raise ValenceError(
                f"{len(rejected)} invalid line(s) in {args.file}; nothing sent "
                "(--skip-invalid sends the valid lines)"
            )
    elif args.text:
        events = [
            editor_event(
                args.text, doc_id=args.doc_id, user_id=args.user_id, target_emotion=args.target
            )
        ]
        rejected = []
    else:
        raise ValenceError("give a text or --file events.jsonl")
    # A topic created now has no leader for a moment: wait, so the first send is not refused.
    asyncio.run(ensure_topics(settings, {settings.input_topic: settings.topic_partitions}))
    count = asyncio.run(send_events(settings, events))
    skipped = f"; skipped {len(rejected)} invalid line(s)" if rejected else ""
    print(f"sent {count} event(s) to {settings.input_topic}{skipped}")
    return 0


def cmd_tail(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.client import read_topic

    topic = {"scored": settings.output_topic, "dead-letter": settings.dead_letter_topic}[args.topic]

    async def tail() -> None:
        async for record in read_topic(
            settings,
            topic,
            from_beginning=not args.latest,
            idle_timeout_s=None if args.follow else args.idle_timeout,
            max_records=args.max,
        ):
            print(
                orjson.dumps(record["value"]).decode()
                if args.raw
                else summary_line(record["value"]),
                flush=True,
            )

    asyncio.run(tail())
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.offline import score_lines

    if args.file:
        lines = Path(args.file).read_text().splitlines()
    elif args.text:
        lines = [orjson.dumps({"text": args.text}).decode()]
    else:
        raise ValenceError("give a text or --file texts.jsonl")
    out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115
    try:
        for record in score_lines(settings, lines, batch_size=settings.batch_max_events):
            out.write(orjson.dumps(record).decode() + "\n")
    finally:
        if args.output:
            out.close()
    return 0


def cmd_module_main(args: argparse.Namespace, settings: Settings) -> int:
    """Hand the arguments after `--` to a module's own `main` (train, distill, calibrate)."""
    module = importlib.import_module(args.module)
    argv = args.module_args[1:] if args.module_args[:1] == ["--"] else args.module_args
    return int(module.main(argv) or 0)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from models.training.evaluation import evaluate
    from stream.factory import load_configured_scorer

    scorer = load_configured_scorer(settings)
    report = evaluate(
        scorer, Path(args.data), args.task, limit=args.limit, progress=sys.stderr.isatty()
    )
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from stream.bench.runner import bench_command

    return bench_command(args, settings)


def cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    from models.recommend.commands import recommend, render
    from stream.factory import load_configured_scorer, recommendation_budget

    result = recommend(
        load_configured_scorer(settings),
        args.text,
        args.target,
        recommendation_budget(settings),
        attribution=settings.attribution,
    )
    print(orjson.dumps(result).decode() if args.json else render(result))
    return 0


def cmd_evaluate_recs(args: argparse.Namespace, settings: Settings) -> int:
    from models.recommend.commands import evaluate_recs
    from models.recommend.quality import GRADED_SET, GRADES, render
    from stream.factory import load_configured_scorer, recommendation_budget

    report = evaluate_recs(
        load_configured_scorer(settings),
        recommendation_budget(settings),
        graded=Path(args.graded) if args.graded else GRADED_SET,
        grades=Path(args.grades) if args.grades else GRADES,
        output=Path(args.output) if args.output else None,
        latency=args.latency,
    )
    print(render(report))
    if "latency" in report:
        print(orjson.dumps(report["latency"], option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.demo import run_demo

    return run_demo(settings, Path(args.events))


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valence", description="Score text events from Kafka for sentiment and emotion."
    )
    parser.add_argument("--debug", action="store_true", help="Show tracebacks on errors.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(handler=handler)
        _add_settings_flags(sub)
        return sub

    add("worker", cmd_worker, "Run the scoring worker (faust agent) until SIGTERM.")
    add("gateway", cmd_gateway, "Serve HTTP/WebSocket access to the topics and the writing page.")

    kafka = add("kafka", cmd_kafka, "Start, stop or inspect the local Apache Kafka broker.")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.add_argument(
        "--secure",
        action="store_true",
        help="start: add a SASL_SSL listener on kafka_port+2 (SCRAM-SHA-512 user, TLS "
        "certificate signed by a local CA) and print the client settings.",
    )

    send = add("send", cmd_send, "Send a text, or a JSONL file of editor events, to the input.")
    send.add_argument("text", nargs="?", help="Text to send as one editor event.")
    send.add_argument(
        "--file",
        help="JSONL file of editor events (one per line); every line is checked first and "
        "nothing is sent when one is invalid.",
    )
    send.add_argument(
        "--skip-invalid",
        action="store_true",
        help="With --file: send the valid lines and list the invalid ones.",
    )
    send.add_argument("--doc-id", default="doc-cli")
    send.add_argument("--user-id", default="user-cli")
    send.add_argument("--target", choices=list(EMOTIONS))

    tail = add("tail", cmd_tail, "Print scored events (or dead letters).")
    tail.add_argument("--topic", choices=["scored", "dead-letter"], default="scored")
    tail.add_argument("--max", type=int, default=None, help="Stop after this many records.")
    tail.add_argument("--follow", action="store_true", help="Wait for new records forever.")
    tail.add_argument("--latest", action="store_true", help="Skip records already there.")
    tail.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="Without --follow, stop after this long with nothing new.",
    )
    tail.add_argument("--raw", action="store_true", help="Print the whole JSON records.")

    score = add("score", cmd_score, "Score a text or a JSONL file offline (no Kafka), as JSONL.")
    score.add_argument("text", nargs="?")
    score.add_argument("--file", help="JSONL with a `text` field per line (editor events work).")
    score.add_argument("--output", help="Write JSONL here instead of stdout.")

    for name, module, help_ in (
        ("train", "models.training.train", "Train a model (see `valence train -- --help`)."),
        (
            "distill",
            "models.training.distill",
            "Distil a model into a student (`valence distill -- --help`).",
        ),
        (
            "calibrate",
            "models.training.calibrate",
            "Re-tune a trained model's sentiment prior correction (`valence calibrate -- --help`).",
        ),
    ):
        forward = add(name, cmd_module_main, help_)
        forward.set_defaults(module=module)
        forward.add_argument(
            "module_args",
            nargs=argparse.REMAINDER,
            help=f"Arguments for {module.replace('.', '/')}.py.",
        )

    evaluate = add(
        "evaluate",
        cmd_evaluate,
        "Accuracy, macro-F1, macro-recall, AUC and per-class report on labelled JSONL.",
    )
    evaluate.add_argument("data", help="JSONL with `text` and `label` (or GoEmotions `labels`).")
    evaluate.add_argument("--task", choices=["emotion", "sentiment"], required=True)
    evaluate.add_argument("--output", help="Also write the report as JSON here.")
    evaluate.add_argument("--limit", type=int, default=None, help="Only the first N rows.")

    recommend = add("recommend", cmd_recommend, "Suggest rewrites of a text toward an emotion.")
    recommend.add_argument("text")
    recommend.add_argument("--target", required=True, choices=list(EMOTIONS))
    recommend.add_argument("--json", action="store_true", help="Print JSON.")

    evaluate_recs = add(
        "evaluate-recs",
        cmd_evaluate_recs,
        "Print every top suggestion on the graded set with its grade and automatic checks, "
        "against WordNet synonym swaps in the same run.",
    )
    evaluate_recs.add_argument(
        "--graded", help="Sentences with a target (default: data/suggestions/graded_set.jsonl)."
    )
    evaluate_recs.add_argument(
        "--grades", help="Grades of earlier outputs (default: data/suggestions/grades.jsonl)."
    )
    evaluate_recs.add_argument(
        "--output", help="Write OUTPUT.json and OUTPUT.md (every top suggestion, for reading)."
    )
    evaluate_recs.add_argument(
        "--latency", action="store_true", help="Also time suggestions at batch 16."
    )

    demo = add(
        "demo",
        cmd_demo,
        "Quickstart: local Kafka, a worker, the sample events, scored events printed.",
    )
    demo.add_argument("--events", default=str(SAMPLE_EVENTS), help="JSONL of editor events.")

    from stream.bench.options import add_arguments as add_bench_arguments

    bench = add(
        "bench",
        cmd_bench,
        "Benchmark on the local Kafka: model-only ceiling, pipeline at fixed loads and at "
        "saturation, naive per-event consumer; writes JSON, Markdown and PNG results.",
    )
    add_bench_arguments(bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        return args.handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        print(f"valence: error: setting {field}: {first['msg']}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"valence: error: {exc}", file=sys.stderr)
        logging.getLogger("valence").debug("traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
