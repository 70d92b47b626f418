"""One place that turns errors into answers: JSON for programs, fragments or pages for people."""

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, SecurityError

from ..errors import (
    Conflict,
    DomainError,
    Forbidden,
    IdempotencyMismatch,
    Invalid,
    NotFound,
    PaymentRequired,
)
from .common import is_fragment_request
from .rate_limits import Throttled
from .security import CsrfError
from .words import refusal

STATUS = {
    NotFound: 404,
    Conflict: 409,
    PaymentRequired: 402,
    Invalid: 400,
    IdempotencyMismatch: 422,
    Forbidden: 403,
    CsrfError: 400,
    Throttled: 429,
}


def status_of(error: DomainError) -> int:
    for kind, status in STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


def wants_json() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        response = respond(error.message, status_of(error))
        if isinstance(error, Throttled):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(SecurityError)
    def untrusted_host(error: SecurityError):
        """A Host outside TRUSTED_HOSTS: no URL of ours can be built for it, so plain text."""
        return Response("Unknown host\n", 400, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            404: "Not found",
            405: "Method not allowed",
            413: "Request body too large (64 KiB at most)",
        }
        return respond(messages.get(error.code, error.description or error.name), error.code)


def respond(message: str, status: int):
    if wants_json():
        response = jsonify(error=message)
    elif is_fragment_request():
        response = app_fragment(refusal(message, status))
        response.headers["HX-Retarget"] = "#toasts"
        response.headers["HX-Reswap"] = "beforeend"
    else:
        response = app_page(refusal(message, status), status)
    response.status_code = status
    return response


def app_fragment(message: str):
    return make_response(render_template("_toast.html", message=message, tone="error"))


def app_page(message: str, status: int):
    return make_response(render_template("error.html", message=message, status=status))
