"""Write the JSON Schema files of the contracts: ``python -m schemas.export``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.events import DeadLetter, EditorEvent, ScoredEvent

SCHEMA_DIR = Path(__file__).resolve().parent / "v1"
CONTRACTS: dict[str, type[BaseModel]] = {
    "editor_event": EditorEvent,
    "scored_event": ScoredEvent,
    "dead_letter": DeadLetter,
}


def render(model: type[BaseModel]) -> str:
    """The committed text of one contract's JSON Schema."""
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://valence.dev/schemas/v1/{model.__name__}.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in CONTRACTS.items():
        schema_path(name).write_text(render(model))
        print(f"wrote {schema_path(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
