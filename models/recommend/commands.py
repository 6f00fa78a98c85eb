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
from models.recommend.grammar import Grammar
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
    recommender = Recommender(scorer, resources or Resources.load(), budget, Grammar.load())
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
            f"P({result['target']}) {s['delta']:+.3f}  fit {s['similarity']:.2f}  "
            f"({s['kind']}; {', '.join(s['sources']) or '-'})\n   {rewritten}"
        )
    for a in result.get("attributions", []):
        spans = ", ".join(f"{x['text']!r} {x['score']:+.3f}" for x in a["spans"]) or "-"
        lines.append(f"{a['head']} {a['label']} ({a['probability']:.2f}): {spans}")
    return "\n".join(lines)


def evaluate_recs(
    scorer: Scorer,
    budget: Budget,
    *,
    graded: Path,
    grades: Path,
    output: Path | None,
    latency: bool,
) -> dict[str, Any]:
    """The graded evaluation (and the cost of suggestions); with `output` (a path without
    suffix) it writes `<output>.json` and `<output>.md` (every top suggestion, for reading)."""
    from models.recommend import quality

    resources = Resources.load()
    report = quality.graded_evaluation(
        scorer, resources, budget=budget, sentences=graded, grades=grades
    )
    if latency:
        report["latency"] = quality.latency(scorer, resources, budget=budget, sentences=graded)
    if output is not None:
        output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        output.with_suffix(".md").write_text(quality.render(report) + "\n")
    return report
