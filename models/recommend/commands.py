"""What `valence recommend` and `valence evaluate-recs` do, given a loaded scorer.

`stream/cli/main.py` parses the arguments and loads the model; these functions do the rest and
return what to print, so they are testable without a shell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.base import Scorer
from models.recommend.budget import Budget
from models.recommend.ranking import Recommender
from models.recommend.resources import Resources


def recommend(
    scorer: Scorer,
    text: str,
    target: str,
    budget: Budget,
    *,
    attribution: bool = False,
    resources: Resources | None = None,
) -> dict[str, Any]:
    """The text's scores, its ranked suggestions toward `target` (and attributions)."""
    recommender = Recommender(scorer, resources or Resources.load(), budget)
    [score] = scorer.score([text])
    [analysis] = recommender.analyse([text], [score], [target], attribution=attribution)
    return {
        "text": text,
        "target": target,
        "emotion": score.emotion.label,
        "probability": round(score.emotion.probabilities[target], 4),
        "suggestions": [s.to_dict() for s in analysis.suggestions],
        **({"attributions": [a.to_dict() for a in analysis.attributions]} if attribution else {}),
    }


def render(result: dict[str, Any]) -> str:
    """Human-readable suggestions, best first."""
    lines = [
        f"text: {result['text']}",
        f"emotion now: {result['emotion']}; P({result['target']}) = {result['probability']:.3f}",
    ]
    if not result["suggestions"]:
        lines.append(f"no suggestion moves this text toward {result['target']}")
    for rank, s in enumerate(result["suggestions"], 1):
        rewritten = result["text"][: s["start"]] + s["replacement"] + result["text"][s["end"] :]
        lines.append(
            f"{rank}. [{s['start']}:{s['end']}] {s['original']!r} -> {s['replacement']!r}  "
            f"P({result['target']}) {s['delta']:+.3f}  similarity {s['similarity']:.3f}  "
            f"({', '.join(s['sources'])})\n   {rewritten}"
        )
    for a in result.get("attributions", []):
        spans = ", ".join(f"{x['text']!r} {x['score']:+.3f}" for x in a["spans"]) or "-"
        lines.append(f"{a['head']} {a['label']} ({a['probability']:.2f}): {spans}")
    return "\n".join(lines)


def evaluate_recs(
    scorer: Scorer,
    budget: Budget,
    *,
    per_target: int,
    seed: int,
    data: Path | None,
    output: Path | None,
    latency: bool,
) -> dict[str, Any]:
    """Run the evaluation (and the latency measurement); write JSON when `output` is set."""
    from models.recommend import quality as ev

    resources = Resources.load()
    report = ev.evaluate(
        scorer,
        resources,
        per_target=per_target,
        seed=seed,
        budget=budget,
        data=data or ev.VALIDATION,
        progress=lambda line: print(line, flush=True),
    )
    if latency:
        print("timing suggestions and attribution", flush=True)
        report["latency"] = ev.latency(scorer, resources, budget=budget)
        report["attribution_cost"] = ev.attribution_cost(scorer)
    if output is not None:
        output.write_text(json.dumps(report, indent=2) + "\n")
    return report
