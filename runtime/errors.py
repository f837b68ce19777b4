"""Errors are data: one type per contract code, one function renders them as JSON."""

from __future__ import annotations

from typing import Any, ClassVar

from quart import Response, jsonify

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "error_body",
    "error_response",
]


class ApiError(Exception):
    """An error a client may see: a stable code, a status and a safe message."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal server error."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)


class BadRequest(ApiError):
    status, code, default_message = 400, "bad_request", "The request is malformed."


class Unauthorized(ApiError):
    status, code, default_message = 401, "unauthorized", "Authentication required."


class Forbidden(ApiError):
    status, code, default_message = 403, "forbidden", "You may not do that."


class NotFound(ApiError):
    status, code, default_message = 404, "not_found", "Not found."


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed."


class Conflict(ApiError):
    status, code, default_message = 409, "conflict", "The request conflicts with existing data."


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class RateLimited(ApiError):
    status, code, default_message = 429, "rate_limited", "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class Unavailable(ApiError):
    status, code, default_message = 503, "unavailable", "Not available now; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(error: ApiError) -> Response:
    response = jsonify(error_body(error.code, error.message, **error.extra))
    response.status_code = error.status
    if isinstance(error, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    return response
