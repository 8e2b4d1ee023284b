"""HTTP plumbing: every error as JSON, the body limit, security headers.

Every answer that is not a success is ``{"status": N, "error": "...",
"field": "..."}`` (``field`` where one field of the request is to blame),
never an HTML page or a traceback::

    400  the body is not valid JSON
    404  an unknown route, model or word
    405  a route asked with the wrong method
    413  a body over serve.max_body
    422  a field of the wrong type or out of its range
    503  no answer within serve.timeout_s (the worker keeps serving), or
         more than serve.max_queue sentences already waiting (Retry-After)
    500  a bug: logged with its traceback on the server, one line here
"""

from __future__ import annotations

import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqembed.errors import InputError
from seqembed.serve.workers import Busy, ModelError, RequestTimeout

log = logging.getLogger(__name__)

# The page: scripts, styles, fonts and data from this server only; nothing
# inline but styles (plotly.js sets style attributes as it draws).
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# /docs: Swagger UI starts from one inline script; still nothing from outside.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


_UNION_BRANCH = re.compile(r"(str|int|float|bool|list|dict|tuple)(\[.*\])?")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


def error_body(status: int, message: str, field: str | None = None) -> dict:
    body = {"status": status, "error": message}
    if field is not None:
        body["field"] = field
    return body


def error_response(status: int, message: str, field: str | None = None):
    return JSONResponse(error_body(status, message, field), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return error_response(error.status, str(error), error.field)

    @app.exception_handler(InputError)
    async def input_error(request: Request, error: InputError):
        field = getattr(error, "field", None)
        return error_response(404 if field else 422, str(error), field)

    @app.exception_handler(RequestTimeout)
    async def timeout(request: Request, error: RequestTimeout):
        return error_response(503, str(error))

    @app.exception_handler(ModelError)
    async def model_error(request: Request, error: ModelError):
        # Logged with its traceback in the model's process.
        return error_response(500, str(error))

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy):
        answer = error_response(503, str(error))
        answer.headers["retry-after"] = "1"
        return answer

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = error.errors()
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            detail = (first.get("ctx") or {}).get("error", "")
            where = first["loc"][-1] if first.get("loc") else "?"
            return error_response(
                400, f"the body is not valid JSON ({detail} at character {where})"
            )
        return error_response(422, _describe(first), _field(first.get("loc", ())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        message = error.detail if isinstance(error.detail, str) else str(error)
        if error.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}"
        elif error.status_code == 405:
            message = f"{request.method} {request.url.path}: method not allowed"
        return error_response(error.status_code, message)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(500, f"internal error ({type(error).__name__})")


def _field(location) -> str | None:
    """("body", "text", 2) -> "text[2]"; ("query", "k") -> "k"; the branch
    names pydantic adds for a union ("str", "list[str]") are left out."""
    parts = [
        p
        for p in location
        if p not in ("body", "query", "path") and not _UNION_BRANCH.fullmatch(str(p))
    ]
    if not parts:
        return "body"
    text = str(parts[0])
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _describe(problem: dict) -> str:
    field = _field(problem.get("loc", ()))
    message = problem.get("msg", "invalid value")
    if problem.get("type") == "extra_forbidden":
        return f"unknown field {field!r}"
    if problem.get("type") == "missing":
        return f"{field}: required"
    return f"{field}: {message}"


class BodyLimit:
    """Refuse a request body over ``max_body`` bytes with 413, whether it
    says its length (Content-Length) or not (chunked). A body within the
    limit is read here and handed on whole."""

    def __init__(self, app, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body:
                return await self._too_large(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, send):
        payload = json.dumps(
            error_body(413, f"the body is over serve.max_body ({self.max_body} bytes)")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class SecurityHeaders:
    """No sniffing, no referrer, no framing on every answer; the page and
    the API docs get their content-security policies."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        policy = DOCS_POLICY if path.startswith("/docs") else PAGE_POLICY

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", policy.encode()),
                ]
            await send(message)

        return await self.app(scope, receive, with_headers)
