"""`valence send --file` against the real broker: all or nothing, and no retry noise on a
topic it creates."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from stream.cli.client import editor_event
from stream.config import Settings
from tests.integration.workers import isolated_settings, read_to_end


def _valence(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"VALENCE_{name.upper()}"] = str(value)
    return subprocess.run(
        [sys.executable, "-m", "stream.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write(path: Path, rows: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def test_send_to_a_new_topic_waits_for_leaders_instead_of_retrying(
    kafka: Settings, tmp_path: Path
) -> None:
    settings = kafka.model_copy(update={"input_topic": f"fresh-{uuid.uuid4().hex[:8]}"})
    events = [editor_event(f"text {i}", event_id=f"new-{i}") for i in range(50)]
    path = _write(tmp_path / "events.jsonl", [orjson.dumps(e) for e in events])
    result = _valence(settings, "send", "--file", str(path))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "NotLeader" not in output and "retry" not in output.lower(), output
    assert f"sent 50 event(s) to {settings.input_topic}" in result.stdout
    sent = {r["value"]["event_id"] for r in read_to_end(settings, settings.input_topic)}
    assert sent == {e["event_id"] for e in events}


def test_a_rejected_file_sends_nothing_and_skip_invalid_sends_the_valid_lines(
    kafka: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka)
    good = [editor_event("fine", event_id=f"good-{i}") for i in range(3)]
    rows = [
        orjson.dumps(good[0]),
        b"not json at all",
        orjson.dumps(good[1]),
        orjson.dumps({**good[2], "event_id": "bad-rev", "revision": "x"}),
        orjson.dumps(good[2]),
    ]
    path = _write(tmp_path / "mixed.jsonl", rows)
    refused = _valence(settings, "send", "--file", str(path))
    assert refused.returncode == 1
    assert f"{path}:2: not_json" in refused.stderr and f"{path}:4: invalid_event" in refused.stderr
    assert "nothing sent" in refused.stderr
    assert read_to_end(settings, settings.input_topic) == []
    skipped = _valence(settings, "send", "--file", str(path), "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert f"{path}:2: not_json" in skipped.stderr
    assert "sent 3 event(s)" in skipped.stdout and "skipped 2 invalid line(s)" in skipped.stdout
    sent = [r["value"]["event_id"] for r in read_to_end(settings, settings.input_topic)]
    assert sorted(sent) == ["good-0", "good-1", "good-2"]
