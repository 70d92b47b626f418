"""What the contract promises on the wire, in one place for every suite that checks it: the
field sets, times in ISO 8601 UTC, and answers checked against the OpenAPI document
(`consult/openapi.json`)."""

import json
import re
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

SESSION_FIELDS = {
    "id",
    "userId",
    "astrologerId",
    "astrologerName",
    "status",
    "ratePaisePerMinute",
    "requestedAt",
    "startedAt",
    "endedAt",
    "endReason",
    "durationSeconds",
    "totalCostPaise",
    # the second wave (README "Before and after the end")
    "maxMinutes",
    "maxSpendPaise",
    "refundedPaise",
}
END_FIELDS = {
    "sessionId",
    "reason",
    "endedAt",
    "durationSeconds",
    "totalCostPaise",
    "balancePaise",
    "alreadyEnded",
}
ENDED_FIELDS = {"sessionId", "reason", "timestamp", "durationSeconds", "totalCostPaise"}
BILLING_FIELDS = {"sessionId", "elapsedSeconds", "costPaise", "balancePaise", "fundedSecondsLeft"}
MESSAGE_FIELDS = {"sessionId", "id", "senderId", "text", "sentAt"}
ASTROLOGER_FIELDS = {
    "id",
    "username",
    "name",
    "ratePaisePerMinute",
    "speciality",
    "online",
    "availability",
    "ratingAverage",
    "ratingCount",
}
RATING_FIELDS = {"sessionId", "stars", "comment", "ratedAt"}
REPORT_FIELDS = {
    "id",
    "sessionId",
    "category",
    "text",
    "status",
    "createdAt",
    "refundPaise",
    "note",
}


def instant(text: str) -> datetime:
    """Parse an API time, which must be ISO 8601 in UTC with an offset."""
    assert text.endswith(("Z", "+00:00")), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def whole_seconds(start: str, stop: str) -> int:
    """The whole seconds between two API times."""
    return (instant(stop) - instant(start)) // timedelta(seconds=1)


# Error bodies the contract names.
AUTH_REQUIRED = {"error": "Authentication required"}
NOT_FOUND = {"error": "Session not found"}


# ---------------------------------------------------------------- the OpenAPI document

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "consult" / "openapi.json"
OPENAPI = json.loads(OPENAPI_PATH.read_text())
METHODS = ("get", "put", "post", "delete", "patch")


def operations() -> set[tuple[str, str]]:
    """Every (METHOD, path template) the document describes."""
    return {(m.upper(), p) for p, item in OPENAPI["paths"].items() for m in item if m in METHODS}


def _template_of(path: str) -> str:
    """The document's path for a concrete one: a literal path wins over a template."""
    if path in OPENAPI["paths"]:
        return path
    for template in OPENAPI["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template
    raise AssertionError(f"{path} is not in {OPENAPI_PATH.name}")


def _resolved(pointer: str) -> tuple[str, dict]:
    """The object at a JSON pointer of the document, following a `$ref` there."""
    node = OPENAPI
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        return _resolved(node["$ref"])
    return pointer, node


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@cache
def _validator(pointer: str) -> Draft202012Validator:
    # The whole document is the root, so the schema's own `$ref`s resolve inside it.
    return Draft202012Validator(
        {**OPENAPI, "$ref": pointer}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def conforming(response):
    """Check an API answer (Flask test client's or `requests`') against the document: its
    status is declared for the operation and its body matches that answer's schema. Returns
    the JSON body (None for another media type)."""
    request = response.request
    method = request.method
    path = getattr(request, "path", None) or urlsplit(request.path_url).path
    template = _template_of(path)
    operation = OPENAPI["paths"][template].get(method.lower())
    assert operation is not None, f"{method} {template} is not in {OPENAPI_PATH.name}"
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {template} does not declare {status}"
    pointer, answer = _resolved(f"#/paths/{_escape(template)}/{method.lower()}/responses/{status}")
    if status == "429":
        assert response.headers.get("Retry-After", "").isdigit(), "429 without Retry-After"
    media = response.headers.get("Content-Type", "").split(";")[0]
    assert media in answer.get("content", {}), f"{method} {template} {status}: {media}"
    if media != "application/json":
        return None
    body = response.json() if callable(response.json) else response.get_json()
    _validator(f"{pointer}/content/application~1json/schema").validate(body)
    return body


def checked(response):
    """The response itself, once `conforming`: for helpers that hand responses on."""
    conforming(response)
    return response
