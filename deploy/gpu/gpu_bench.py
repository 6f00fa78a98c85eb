"""GPU checks behind deploy/gpu/gpu_check.sh (also runs on the CPU, for a smoke test).

    python -m deploy.gpu.gpu_bench correctness --texts 200 --output correctness.json
    python -m deploy.gpu.gpu_bench model-only --tokens 64 --output model_only.json
    python -m deploy.gpu.gpu_bench summarize RESULTS_DIR

`correctness` scores the same validation texts with the device's half precision and with
CPU fp32 and compares labels and probabilities. `model-only` times the network alone on
pre-tokenized 64-token inputs (the issue's >= 20,000 texts/s target) over a range of batch
sizes, with and without `torch.compile`, then the whole `Scorer.score` path (tokenizer and
sentence split included) on ~64-token texts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import torch

from models.loading import load_scorer
from stream.bench.model_only import compare_scores
from stream.bench.workload import sentence_pool, short_texts
from stream.config import Settings

DATA = Path(__file__).resolve().parents[2] / "data"


def _write(result: dict[str, Any], output: Path | None) -> None:
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")


def _validation_texts(count: int) -> list[str]:
    texts: list[str] = []
    for name in ("emotion", "sentiment"):
        path = DATA / name / "validation.jsonl"
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()[: count // 2]
            texts += [str(orjson.loads(line)["text"]) for line in lines]
    return texts or short_texts(count, sentence_pool())


def correctness(settings: Settings, device: str, precision: str, count: int) -> dict[str, Any]:
    texts = _validation_texts(count)
    reference = load_scorer(settings.model_path, device="cpu", precision="fp32")
    candidate = load_scorer(settings.model_path, device=device, precision=precision)
    expected = reference.score(texts)
    got = [score for i in range(0, len(texts), 64) for score in candidate.score(texts[i : i + 64])]
    comparison = compare_scores(expected, got)
    agreement = min(comparison["sentiment_label_agreement"], comparison["emotion_label_agreement"])
    return {
        "device": candidate.info.device,
        "dtype": candidate.info.dtype,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "reference": "cpu float32",
        **comparison,
        # fp16 moves probabilities by ~1e-3; a flipped label is a text near a tie.
        "ok": agreement >= 0.97 and comparison["max_prob_diff"] <= 0.05,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(run: Callable[[], Any], rows: int, device: torch.device, seconds: float) -> float:
    """Rows per second: median of 5 timed slices of about `seconds`/5 each, after warm-up."""
    for _ in range(3):
        run()
    _sync(device)
    slices = []
    for _ in range(5):
        calls, started = 0, time.perf_counter()
        while True:
            run()
            calls += 1
            _sync(device)
            spent = time.perf_counter() - started
            if spent >= seconds / 5:
                break
        slices.append(rows * calls / spent)
    return statistics.median(slices)


def model_only(
    settings: Settings,
    device: str,
    precision: str,
    tokens: int,
    batch_sizes: Sequence[int],
    seconds: float,
    compile_model: bool,
) -> dict[str, Any]:
    scorer: Any = load_scorer(settings.model_path, device=device, precision=precision)
    target = scorer.device
    model = scorer.model
    vocab = int(model.encoder.config.vocab_size)
    generator = torch.Generator().manual_seed(0)

    def inputs(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.randint(1000, vocab, (rows, tokens), generator=generator)
        ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
        return ids.to(target), torch.ones_like(ids).to(target)

    def forward_rate(net: Callable[..., Any], rows: int) -> float:
        ids, mask = inputs(rows)
        with torch.inference_mode():
            return _rate(lambda: net(ids, mask), rows, target, seconds)

    eager = {str(rows): round(forward_rate(model, rows), 1) for rows in batch_sizes}
    best_rows = int(max(eager, key=lambda rows: eager[rows]))
    result: dict[str, Any] = {
        "device": scorer.info.device,
        "dtype": scorer.info.dtype,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "tokens_per_text": tokens,
        "network_texts_per_s_by_batch": eager,
        "best_batch": best_rows,
        "best_network_texts_per_s": eager[str(best_rows)],
    }
    if compile_model:
        started = time.perf_counter()
        try:
            compiled = torch.compile(model, dynamic=False)
            rate = forward_rate(compiled, best_rows)
            result["compiled_network_texts_per_s"] = round(rate, 1)
            result["compile_pays"] = rate > eager[str(best_rows)] * 1.05
        except Exception as exc:  # a compile failure is a finding, not a crash
            result["compile_error"] = repr(exc)[:500]
        result["compile_seconds"] = round(time.perf_counter() - started, 1)
    # The whole scoring path: tokenizer, sentence split, padding, heads, result objects.
    texts = short_texts(max(batch_sizes) * 4, sentence_pool())
    scorer.max_batch_segments = max(batch_sizes)  # one forward per call, as large as above
    scorer.max_batch_tokens = max(batch_sizes) * 128
    rows = max(batch_sizes)
    chunks = [texts[i : i + rows] for i in range(0, len(texts), rows)]
    position = [0]

    def score_once() -> None:
        scorer.score(chunks[position[0] % len(chunks)])
        position[0] += 1

    result["scorer_texts_per_s"] = round(_rate(score_once, rows, target, seconds), 1)
    result["scorer_batch"] = rows
    result["target_texts_per_s"] = 20_000
    result["meets_target"] = (
        max(result["best_network_texts_per_s"], result.get("compiled_network_texts_per_s", 0.0))
        >= 20_000
    )
    return result


def summarize(folder: Path) -> str:
    """A Markdown digest of every JSON the GPU check wrote under `folder`."""
    lines = [f"# GPU check results ({folder.name})", ""]
    for name in ("correctness.json", "model_only.json"):
        path = folder / name
        if path.exists():
            lines += [f"## {name}", "", "```json", path.read_text().strip(), "```", ""]
    for results in sorted(folder.glob("pipeline-*/results.json")):
        data = orjson.loads(results.read_bytes())
        summary = data["summary"]
        at70 = [load for load in data.get("loads", []) if abs(load["fraction"] - 0.7) < 1e-9]
        p99 = at70[0]["latency_ms"]["end_to_end"]["p99"] if at70 else None
        lines.append(
            f"- {results.parent.name}: pipeline {summary['pipeline_texts_per_s']} events/s, "
            f"model-only {summary['model_only_texts_per_s']} texts/s, naive "
            f"{summary['naive_texts_per_s']} events/s (x{summary['pipeline_over_naive']}), "
            f"p99 at 70% {p99} ms"
        )
    backends = folder / "cpu-backends" / "backends.md"
    if backends.exists():
        lines += ["", "## CPU backends (this host's CPUs)", "", backends.read_text().strip()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.gpu.gpu_bench")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp16")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("correctness")
    check.add_argument("--texts", type=int, default=200)
    check.add_argument("--output", type=Path)
    speed = commands.add_parser("model-only")
    speed.add_argument("--tokens", type=int, default=64)
    speed.add_argument("--batch-sizes", default="64,256,1024,2048,4096")
    speed.add_argument("--seconds", type=float, default=5.0)
    speed.add_argument("--no-compile", action="store_true")
    speed.add_argument("--output", type=Path)
    digest = commands.add_parser("summarize")
    digest.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "correctness":
        result = correctness(settings, args.device, args.precision, args.texts)
        _write(result, args.output)
        return 0 if result["ok"] else 1
    if args.command == "model-only":
        sizes = [int(size) for size in args.batch_sizes.split(",")]
        result = model_only(
            settings,
            args.device,
            args.precision,
            args.tokens,
            sizes,
            args.seconds,
            not args.no_compile,
        )
        _write(result, args.output)
        return 0
    print(summarize(args.folder), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
