"""The command line: help everywhere, one-line errors, and offline scoring with the shipped
model."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.cli.client import editor_event, read_event_file
from stream.cli.main import build_parser, main
from stream.config import Settings


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "usage: valence" in capsys.readouterr().out


def test_bad_setting_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "hi", "--batch-max-events", "many"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("valence: error: setting batch_max_events")
    assert "\n" not in err and "Traceback" not in err


def test_missing_file_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--file", "/nonexistent/events.jsonl"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("valence: error:") and "\n" not in err


def test_score_happy_text_with_the_shipped_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "I am so happy today"]) == 0
    record = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["emotion"]["label"] == "joy"
    assert record["sentiment"]["label"] == "positive"
    assert record["sentiment"]["valence"] > 0.3


def test_score_file_keeps_ids_and_scores_every_line(tmp_path, capsys) -> None:
    from stream.cli.main import SAMPLE_EVENTS

    out = tmp_path / "scored.jsonl"
    assert main(["score", "--file", str(SAMPLE_EVENTS), "--output", str(out)]) == 0
    lines = [orjson.loads(line) for line in out.read_text().splitlines()]
    sent = [orjson.loads(line) for line in SAMPLE_EVENTS.read_text().splitlines()]
    assert [r["event_id"] for r in lines] == [e["event_id"] for e in sent]
    for record in lines:
        assert abs(sum(record["emotion"]["probabilities"].values()) - 1) < 1e-3


def test_send_file_with_a_bad_line_names_it_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = orjson.dumps(editor_event("fine", event_id="ok-1")).decode()
    lines = [good, "", '{"event_id": "x", "revision": 1', good.replace("fine", "   "), good]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # No broker runs on this port: reaching the network would fail differently.
    assert main(["send", "--file", str(path), "--bootstrap-servers", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}:3: not_json: ")
    assert err[1].startswith(f"{path}:4: empty_text: ")
    assert err[-1] == (
        f"valence: error: 2 invalid line(s) in {path}; nothing sent "
        "(--skip-invalid sends the valid lines)"
    )


def test_event_file_is_checked_with_the_workers_contract(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rows = [
        orjson.dumps(editor_event("one", event_id="a")),
        orjson.dumps({**editor_event("two", event_id="b"), "schema_version": 3}),
        b"\xff\xfe",
        orjson.dumps(editor_event("three", event_id="c")),
    ]
    path.write_bytes(b"\n".join(rows))
    events, rejected = read_event_file(path, Settings())
    assert [event["event_id"] for event in events] == ["a", "c"]
    assert [(r.line, r.reason) for r in rejected] == [
        (2, "unknown_schema_version"),
        (3, "not_utf8"),
    ]
