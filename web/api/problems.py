"""Every error of the API as RFC 9457 problem details (``application/problem+json``).

A body has the standard members ``type``, ``title``, ``status``, ``detail`` and
``instance``, plus ``hint`` (what to do about it) and, for a bad request, ``errors`` (each
field that was wrong and why). Routes raise :class:`Problem`; FastAPI's own errors
(validation, unknown path, method) and unexpected exceptions are turned into the same
shape by the handlers :func:`install` adds. An unexpected exception is logged with its
traceback and answered with no detail of it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """An error answered as problem details."""

    def __init__(
        self,
        status: int,
        detail: str,
        hint: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.hint = hint
        self.headers = headers
        self.extra = extra


def response(
    request: Request,
    status: int,
    detail: str,
    hint: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "hint": hint,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return response(request, exc.status, exc.detail, exc.hint, exc.headers, **exc.extra)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]}
        for error in exc.errors()
    ]
    fields = ", ".join(error["field"] for error in errors)
    return response(
        request,
        422,
        f"the request is not valid: {fields}",
        "correct the fields listed in 'errors'; the OpenAPI document describes each",
        errors=errors,
    )


_HINTS = {
    404: "check the path; the OpenAPI document (/api/v1/openapi.json) lists every route",
    405: "check the method; the OpenAPI document lists what each path accepts",
}


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    hint = _HINTS.get(exc.status_code, "see docs/api.md, Errors")
    headers = dict(exc.headers) if exc.headers else None
    return response(request, exc.status_code, str(exc.detail), hint, headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return response(
        request,
        500,
        "the server failed to answer this request",
        "try again; if it keeps failing, the API's log has the cause",
    )


def install(app: FastAPI) -> None:
    """Answer every error as problem details, and say so in the OpenAPI document."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]


SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, with what to do about it (hint)",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "hint"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "hint": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error as it is answered: a 422 is problem details
    (FastAPI documents its own ``application/json`` shape), and every other error status
    (401, 403, 404, 503, ...) is the ``default`` response of each operation."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = SCHEMA
    problem = {"content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "The request is not valid", **problem}
            responses.setdefault("default", {"description": "Problem details", **problem})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
