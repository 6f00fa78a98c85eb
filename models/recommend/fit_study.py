"""Which context-fit score separates keepable swaps from nonsense? (`context_fit.py`)

    python -m models.recommend.fit_study [--model models/weights]

Reads `data/suggestions/fit_pairs.jsonl` (one-word swaps written and labelled keepable or
not by a developer: "arrived aggressive days late" no, "terrified" -> "thrilled" yes) and
prints the ROC AUC of each score: the span similarity, Zhou et al.'s validation score, and
for reference the sentence-embedding cosine the first method used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from sklearn.metrics import roc_auc_score

from models.recommend.context_fit import ContextFit, Pair

PAIRS = Path(__file__).resolve().parents[2] / "data" / "suggestions" / "fit_pairs.jsonl"


def main(argv: list[str] | None = None) -> None:
    from models.loading import load_scorer
    from models.recommend.encoder import MeaningEncoder

    parser = argparse.ArgumentParser(prog="python -m models.recommend.fit_study")
    parser.add_argument("--model", type=Path, default=Path("models/weights"))
    args = parser.parse_args(argv)
    rows = [orjson.loads(line) for line in PAIRS.read_bytes().splitlines() if line.strip()]
    pairs = []
    for row in rows:
        start = row["sentence"].index(row["word"])
        end = start + len(row["word"])
        after = row["sentence"][:start] + row["replacement"] + row["sentence"][end:]
        pairs.append(
            Pair(row["sentence"], after, (start, end), (start, start + len(row["replacement"])))
        )
    scorer = load_scorer(args.model, device="cpu", precision="fp32")
    fits = ContextFit.for_scorer(scorer).scores(pairs)
    meaning = MeaningEncoder(scorer)  # type: ignore[arg-type]
    before = meaning.embed([p.before for p in pairs])
    after = meaning.embed([p.after for p in pairs])
    keepable = [row["keepable"] for row in rows]
    scores = {
        "span similarity": [f.span for f in fits],
        "Zhou validation score": [f.validation for f in fits],
        "sentence-embedding cosine (untuned MiniLM, the first method)": [
            float(a @ b) for a, b in zip(before, after, strict=True)
        ],
    }
    print(f"{len(rows)} pairs, {sum(keepable)} keepable")
    for name, values in scores.items():
        print(f"{name}: ROC AUC {roc_auc_score(keepable, values):.3f}")


if __name__ == "__main__":
    main()
