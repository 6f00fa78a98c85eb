"""The gateway's OpenAPI document, built from the event contracts in `schemas/events.py`.

    python -m stream.gateway.openapi    # rewrite schemas/v1/gateway.openapi.json

The gateway serves the same document at /openapi.json; a test fails when the committed
file drifts from it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.events import DeadLetterReason, EditorEvent, ScoredEvent

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "v1" / "gateway.openapi.json"
REF = "#/components/schemas/{model}"
KEY_NOTE = (
    "Send the API key as `Authorization: Bearer <key>`. Browsers cannot set headers on "
    "WebSockets or EventSource: there, offer the subprotocols `valence.v1` and "
    "`bearer.<key>` (WebSocket), or pass `?api_key=<key>` (both)."
)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json({"$ref": "#/components/schemas/Error"})}


def _plain(summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}


def _contract_schemas() -> dict[str, Any]:
    _, combined = models_json_schema(
        [(EditorEvent, "validation"), (ScoredEvent, "validation")], ref_template=REF
    )
    return dict(combined["$defs"])


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway."""
    reasons = [reason.value for reason in DeadLetterReason if reason.value != "scoring_failed"]
    error = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {
                "type": "string",
                "description": "A dead-letter reason for a refused event ("
                + ", ".join(reasons)
                + "), else one of unauthorized, forbidden, rate_limited, too_large, "
                "broker_unavailable, not_a_stream.",
            },
            "detail": {"type": "string"},
            "event_id": {"type": ["string", "null"]},
        },
    }
    accepted = {
        "type": "object",
        "required": ["event_id", "partition", "offset"],
        "properties": {
            "event_id": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }
    item_result = {
        "type": "object",
        "required": ["index", "status"],
        "properties": {
            "index": {"type": "integer", "description": "Position in the posted array."},
            "status": {"type": "integer", "enum": [202, 400]},
            "event_id": {"type": ["string", "null"]},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
            "error": {"type": "string", "enum": reasons},
            "detail": {"type": "string"},
        },
    }
    results = {
        "type": "object",
        "required": ["accepted"],
        "properties": {
            "accepted": {"type": "array", "items": {"$ref": "#/components/schemas/Accepted"}},
            "results": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ItemResult"},
                "description": "Per item, for arrays with refused items (207 or 400).",
            },
        },
    }
    schemas = {
        **_contract_schemas(),
        "Error": error,
        "Accepted": accepted,
        "ItemResult": item_result,
        "Results": results,
    }
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    stream_parameters = [
        {"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "api_key",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "The API key, for clients that cannot send headers.",
        },
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Valence gateway",
            "version": "1",
            "description": "HTTP and WebSocket access to Valence's topics. " + KEY_NOTE,
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Send one editor event or an array of them.",
                    "description": "Each event is validated with the worker's contract; valid "
                    "ones are produced to the input topic (acks=all). 202 comes only after "
                    "the broker acknowledged every valid event of the request.",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/EditorEvent"},
                                    {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/EditorEvent"},
                                    },
                                ]
                            }
                        ),
                    },
                    "responses": {
                        "202": {
                            "description": "Every event acknowledged by the broker.",
                            "content": _json({"$ref": "#/components/schemas/Results"}),
                        },
                        "207": {
                            "description": "An array with valid and refused items: the valid "
                            "ones were acknowledged.",
                            "content": _json({"$ref": "#/components/schemas/Results"}),
                        },
                        "400": {
                            "description": "Refused: a single event (Error) or an array whose "
                            "items were all refused (Results).",
                            "content": _json(
                                {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Error"},
                                        {"$ref": "#/components/schemas/Results"},
                                    ]
                                }
                            ),
                        },
                        "401": _error("No API key, or an unknown one."),
                        "403": _error("The key may only read."),
                        "413": _error("The body (or the array) is over the limit."),
                        "429": _error("Over the key's rate limit; see Retry-After."),
                        "503": _error("The broker did not acknowledge; send again."),
                    },
                }
            },
            "/v1/docs/{doc_id}/stream": {
                "get": {
                    "summary": "Scored events of one document as they are published.",
                    "description": "A WebSocket (text frames, one ScoredEvent JSON each) or, "
                    "with `Accept: text/event-stream`, Server-Sent Events (`data:` lines). "
                    "Only events published after the stream opened are sent. " + KEY_NOTE,
                    "security": bearer,
                    "parameters": stream_parameters,
                    "responses": {
                        "101": {"description": "WebSocket opened (subprotocol valence.v1)."},
                        "200": {
                            "description": "Server-Sent Events.",
                            "content": {
                                "text/event-stream": {
                                    "schema": {"$ref": "#/components/schemas/ScoredEvent"}
                                }
                            },
                        },
                        "400": _error("Neither a WebSocket upgrade nor an EventSource."),
                        "401": _error("No API key, or an unknown one."),
                        "429": _error("Over the key's rate limit; see Retry-After."),
                    },
                }
            },
            "/health": _plain("200 while the process runs."),
            "/ready": _plain("200 once the producer and the output-topic reader run, else 503."),
            "/metrics": _plain("Prometheus metrics (text format)."),
            "/": _plain("The writing page (HTML)."),
        },
    }


def render() -> str:
    """The committed text of the document."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    COMMITTED.write_text(render())
    print(f"wrote {COMMITTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
