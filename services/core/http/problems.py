"""Errors as RFC 9457 problem details (`application/problem+json`), never a bare 500 page."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.db.errors import retryable
from services.core.errors import Conflict, Forbidden, InvalidInput, NotFound

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
# Most specific first: NotFound and the others are kinds of InvalidInput.
_STATUS_OF: tuple[tuple[type[InvalidInput], int], ...] = (
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
)


def problem(status: int, detail: str, *, type_: str = "about:blank", **extra: Any) -> JSONResponse:
    """A problem response; `title` is the status phrase, as RFC 9457 asks for about:blank."""
    body = {"type": type_, "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


class FieldProblem(BaseModel):
    """One bad field: where it is and what is wrong with it."""

    path: str = Field(examples=["signals[3].data.sick_leave_pct"])
    message: str = Field(examples=["must be between 0 and 100 (percent), got 140"])


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error answer."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the OpenAPI document so every error answer is `application/problem+json` with
    the Problem schema (FastAPI would describe its own 422 shape, which we never send)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in (("Problem", Problem), ("FieldProblem", FieldProblem)):
        components[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components[name].pop("$defs", None)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/v1/"):  # everything that reads the database may find it down
                responses.setdefault("503", {"description": "The database is unavailable."})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    examples = response.get("content", {}).get(PROBLEM_JSON, {})
                    response["content"] = {PROBLEM_JSON: {**examples, "schema": ref}}
    return schema


def _field_path(location: tuple[Any, ...]) -> str:
    """`('body', 'signals', 3, 'data', 'x')` → `signals[3].data.x`."""
    path = ""
    for part in location[1:] if location and location[0] == "body" else location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def install_problem_handlers(app: FastAPI) -> None:
    """Make HTTP errors, validation errors and unexpected errors answer as problem details."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": _field_path(tuple(error["loc"])), "message": error["msg"]}
            for error in exc.errors()
        ]
        return problem(422, "The request is not valid; see `errors`.", errors=errors)

    @app.exception_handler(InvalidInput)
    async def refused(_: Request, exc: InvalidInput) -> JSONResponse:
        status = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
        return problem(status, str(exc))

    @app.exception_handler(IntegrityError)
    async def collided(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same unique thing; the loser may simply retry.
        return problem(409, "The request conflicts with a change made at the same moment; retry.")

    @app.exception_handler(DataError)
    async def unstorable(_: Request, exc: DataError) -> JSONResponse:
        # A value PostgreSQL cannot hold that validation let through; refuse, never a 500.
        log.warning("value refused by the database: %s", type(exc.orig).__name__)
        return problem(422, "A value in the request cannot be stored; check its characters.")

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A connection lost mid-statement (the server restarted) is unavailability, not a bug:
        # SQLAlchemy has discarded the connection, and a retry gets a fresh one. So is a server
        # still starting or shutting down (SQLSTATE class 57), a lost connection (08), and a
        # deadlock or serialisation failure (40): nothing was stored, and a retry will do.
        if retryable(exc):
            return await unavailable(request, exc)
        return await unexpected(request, exc)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        detail = str(getattr(exc, "orig", exc)).splitlines()[:1]
        log.warning("database unavailable: %s %s", type(exc).__name__, detail)
        response = problem(503, "The database is unavailable; nothing was stored. Retry later.")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "Something went wrong on our side; it has been logged.")
