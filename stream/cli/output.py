"""How the command line prints records: one line per scored event or dead letter."""

from __future__ import annotations

from typing import Any


def summary_line(value: dict[str, Any]) -> str:
    if "reason" in value:
        return f"DEAD-LETTER {value.get('event_id')}: {value['reason']}: {value['error']}"
    sentiment, emotion = value["sentiment"], value["emotion"]
    return (
        f"{value['doc_id']}#{value['revision']} {value['event_id']}: "
        f"sentiment={sentiment['label']} (valence {sentiment['valence']:+.2f}) "
        f"emotion={emotion['label']} ({emotion['intensity']:.2f}) "
        f"sentences={len(value['sentences'])} "
        f"batch={value['timings']['batch_events']}"
    )
