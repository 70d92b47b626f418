"""schemathesis against a real server on a fresh database (per backend): every operation of
`consult/openapi.json` with generated inputs, then the linked ones in sequences (request a
session, then accept, chat, end...). No answer may be a 5xx, and every answer must be one
the document declares for its operation, in its schema. The budget is bounded and the
generation derandomized, so a run is repeatable and takes well under a minute."""

import copy
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from helpers.contract import OPENAPI
from helpers.server import Server, make_account

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
EXAMPLES = 15  # per operation and generation mode
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, not shrunk
    suppress_health_check=list(HealthCheck),
)
ASTROLOGER_ONLY = {"accept", "decline", "setAvailability", "earnings"}


@pytest.fixture
def world(fresh_server):
    """A server on a fresh database, an astrologer, a user with money and an admin."""
    server: Server = fresh_server()
    return {
        "server": server,
        "user": make_account(server, "user", balance=1_000_000),
        "astrologer": make_account(server, "astrologer", rate=600),
        "admin": make_account(server, "admin"),
    }


def caller_for(world, operation) -> dict:
    """Who calls an operation: the role it is for (the in-process tests try the others)."""
    op_id = operation.definition.raw.get("operationId")
    if operation.path.startswith("/api/admin/"):
        who = world["admin"]
    elif op_id in ASTROLOGER_ONLY:
        who = world["astrologer"]
    else:
        who = world["user"]
    return {"Authorization": f"Bearer {who.token}"}


def aimed(world, case) -> None:
    """A session request goes to the astrologer who exists (a random id names nobody)."""
    if case.operation.definition.raw["operationId"] == "createSession" and isinstance(
        case.body, dict
    ):
        case.body["astrologerId"] = world["astrologer"].id


def loaded(world):
    schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI))  # it writes into it
    schema.config.update(base_url=world["server"].url)
    schema.config.generation.update(with_security_parameters=False, allow_x00=False)
    return schema


def fuzz(world, operation, mode, seen: Counter) -> None:
    """Run one operation's generated cases of one mode; count the statuses it answered."""
    op_id, headers = operation.definition.raw["operationId"], caller_for(world, operation)

    @SETTINGS
    @given(case=operation.as_strategy(mode))
    def run(case):
        if mode == GenerationMode.POSITIVE:
            aimed(world, case)
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)
        seen[op_id, response.status_code] += 1

    try:
        run()
    except Unsatisfiable:  # nothing to get wrong: no parameters and no body
        assert mode == GenerationMode.NEGATIVE, op_id


def test_every_operation_answers_as_the_document_says(world):
    schema, started, seen = loaded(world), time.monotonic(), Counter()
    # The astrologer's availability last: once busy or offline, no request gets through.
    for operation in sorted(
        (r.ok() for r in schema.get_all_operations()),
        key=lambda o: o.definition.raw["operationId"] == "setAvailability",
    ):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(world, operation, mode, seen)
    assert {op for op, _ in seen} == OPERATION_IDS
    print(f"schemathesis: {sorted(seen.items())}")
    print(f"schemathesis: {len(seen)} (operation, status) in {time.monotonic() - started:.1f} s")


def test_linked_operations_in_sequence(world):
    schema, started = loaded(world), time.monotonic()
    machine = schema.as_state_machine()

    seen = Counter()

    class Scenario(machine):
        def setup(self):
            """Each scenario's user starts free: nothing requested, nothing active."""
            user = world["user"]
            for waiting in user.get("/api/sessions?status=requested").json():
                user.post(f"/api/sessions/{waiting['id']}/cancel")
            user.post("/api/sessions/end")

        def before_call(self, case):
            aimed(world, case)

        def after_call(self, response, case):
            seen[case.operation.definition.raw["operationId"], response.status_code] += 1

        def get_call_kwargs(self, case):
            return {"headers": caller_for(world, case.operation), "timeout": 10}

        def validate_response(self, response, case, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Scenario.run(settings=settings(SETTINGS, max_examples=2 * EXAMPLES, stateful_step_count=8))
    print(f"schemathesis stateful: {sorted(seen.items())}")
    print(f"schemathesis stateful: {time.monotonic() - started:.1f} s")


OPERATION_IDS = {
    operation["operationId"]
    for item in OPENAPI["paths"].values()
    for method, operation in item.items()
    if method != "parameters"
}
