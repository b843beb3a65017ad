"""What `/docs` shows for the ingest routes: request bodies, answers and errors, with examples."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.ingest.csv_format import SAMPLE_CSV
from services.ingest.schemas import (
    EXAMPLE_BATCH,
    EXAMPLE_SIGNAL,
    batch_json_schema,
    signal_json_schema,
)


def _problem(status: int, title: str, description: str, detail: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "about:blank",
                    "title": title,
                    "status": status,
                    "detail": detail,
                }
            }
        },
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem(
        400,
        "Bad Request",
        "The body is not valid JSON or CSV.",
        "The body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    401: _problem(
        401,
        "Unauthorized",
        "No API key, an unknown or revoked one, or a bad webhook signature.",
        "Send your API key as `Authorization: Bearer <key>`.",
    ),
    403: _problem(
        403,
        "Forbidden",
        "Not your department, or a role that may not do this.",
        "signals[0]: department HIC-ZWOLLE of provider 73990001 is in region ijssel-vecht,"
        " which Menzis does not coordinate",
    ),
    404: _problem(
        404,
        "Not Found",
        "An unknown department.",
        "the signal: unknown department HIC-ZWOL of provider 73990001",
    ),
    409: _problem(
        409,
        "Conflict",
        "A signal id or Idempotency-Key reused for a different body.",
        "This Idempotency-Key was used for a different request; use a new key for a new request.",
    ),
    413: _problem(
        413,
        "Content Too Large",
        "The body is over the size limit (default 1 MiB).",
        "The request body is larger than 1048576 bytes; send smaller batches.",
    ),
    415: _problem(
        415,
        "Unsupported Media Type",
        "Not application/json (text/csv for the CSV upload).",
        "Send the body as application/json (got text/plain).",
    ),
    422: {
        "description": "Invalid: nothing was stored. `errors` names the path of every bad field.",
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "about:blank",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "Nothing was stored. signals[3].data.sick_leave_pct: must be"
                    " between 0 and 100 (percent), got 140",
                    "errors": [
                        {
                            "path": "signals[3].data.sick_leave_pct",
                            "message": "must be between 0 and 100 (percent), got 140",
                        }
                    ],
                }
            }
        },
    },
    429: _problem(
        429,
        "Too Many Requests",
        "Your organisation sends too fast; see Retry-After.",
        "Too many requests from your organisation; slow down or send batches.",
    ),
    503: _problem(
        503,
        "Service Unavailable",
        "The database is unavailable; nothing was stored. See Retry-After.",
        "The database is unavailable; nothing was stored. Retry later.",
    ),
}


class AcceptedSignal(BaseModel):
    id: str
    department: str
    provider_agb: str
    kind: str
    status: str = Field(description="`stored`, or `already_stored` for a repeat of an id")


class SignalsAccepted(BaseModel):
    accepted: int
    stored: int
    signals: list[AcceptedSignal]


ACCEPTED_RESPONSE: dict[str, Any] = {
    "description": "Stored (committed) — each signal once. Lists every signal with its id.",
    "model": SignalsAccepted,
}

SIGNALS_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [signal_json_schema(), batch_json_schema()]},
            "examples": {
                "one signal": {"value": EXAMPLE_SIGNAL},
                "a batch": {"value": EXAMPLE_BATCH},
            },
        }
    },
}

CSV_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {"text/csv": {"schema": {"type": "string"}, "example": SAMPLE_CSV}},
}
