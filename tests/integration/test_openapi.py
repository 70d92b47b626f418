"""The OpenAPI document (`consult/openapi.json`) against the app: every /api route is
described and every described operation exists, the document is valid OpenAPI 3.1, and it
is served to anyone at /api/openapi.json."""

import re

import pytest
from jsonschema import ValidationError
from openapi_spec_validator import validate

from helpers.contract import OPENAPI, conforming, operations

pytestmark = pytest.mark.sqlite_only  # a question about routes, not databases


def routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every /api rule, with `<int:x>` written as the document's `{x}`."""
    return {
        (method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_is_described_and_every_description_is_a_route(app):
    assert routes(app) - operations() == set(), "routes missing from consult/openapi.json"
    assert operations() - routes(app) == set(), "operations no route serves"


def test_the_document_is_valid_openapi_3_1():
    assert OPENAPI["openapi"].startswith("3.1")
    validate(OPENAPI)


def test_every_operation_has_an_id_a_summary_and_error_answers():
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation.get("operationId") and operation.get("summary"), (method, path)
            if operation.get("security") != []:  # signed-in callers only
                assert "401" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= operation["responses"].keys() or path.endswith(
                    ("/accept", "/decline", "/cancel")
                ), (method, path)


# Sign-in, sign-up, recharge, session requests, messages and reports are rate-limited.
THROTTLED = {"token", "register", "recharge", "createSession", "postMessage", "report"}


def test_rate_limited_operations_declare_429_with_retry_after():
    declared = {
        operation["operationId"]
        for item in OPENAPI["paths"].values()
        for method, operation in item.items()
        if method != "parameters" and "429" in operation["responses"]
    }
    assert declared == THROTTLED
    throttled = OPENAPI["components"]["responses"]["Throttled"]
    assert "Retry-After" in throttled["headers"]


def test_the_document_is_served_to_anyone(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == OPENAPI
    assert conforming(response) == OPENAPI


def test_conforming_catches_a_wrong_body_and_an_undeclared_status(client, alice):
    response = client.get("/api/me", headers=alice.auth)
    assert conforming(response) == {"id": alice.id, "username": "alice", "role": "user"}
    response.set_data(b'{"id": "alice", "username": "alice", "role": "user"}')
    with pytest.raises(ValidationError):
        conforming(response)
    response.status_code = 418
    with pytest.raises(AssertionError, match="does not declare 418"):
        conforming(response)
