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
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
