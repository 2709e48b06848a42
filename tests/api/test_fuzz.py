"""The API fuzzed from its own OpenAPI document by schemathesis, against the live app over HTTP, as the admin and as
an annotator: no answer is a server error, and every answer has a documented status and matches its schema."""

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402  (hypothesis comes with schemathesis)
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from ..conftest import Api  # noqa: E402

EXAMPLES = 12
"""Per operation and per caller: enough to reach every route's validation and refusals in about a minute."""


NOT_RUNNING = ("[E610]", "[E1007]")
"""The 503s that are answers, not failures: this API has no scheduler (E610), so no server ever runs (E1007)."""


def no_crash(ctx, response, case) -> None:
    """Not a server error: a 5xx fails, but for the coded 503s saying that a part is not running here."""
    CALLS.append(response.status_code)
    if response.status_code >= 500 and not (response.status_code == 503 and any(code in response.text for code in NOT_RUNNING)):
        raise AssertionError(f"{response.status_code}: {response.text[:500]}")


CALLS: list[int] = []  # the status of every checked answer
CHECKS = [no_crash, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the store's behaviour is tested on both elsewhere
@pytest.mark.parametrize("caller", ["admin", "annotator"])
def test_no_server_error_and_every_answer_as_documented(api: Api, clinical_config: str, clinical_tasks: list, caller: str) -> None:
    pid = api.admin.post("/api/projects", json={"name": "fuzzed", "labeling_config": clinical_config}).json()["id"]
    api.admin.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:5])  # so generated ids sometimes exist
    client = api.admin
    if caller == "annotator":  # a member with the fewest rights: every refusal must be a 4xx too
        client = api.user("arno")
        assert api.admin.post(f"/api/projects/{pid}/members", json={"username": "arno", "role": "annotator"}).status_code == 201
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    auth = {"Authorization": client.headers["Authorization"]}
    failures, operations = [], 0
    CALLS.clear()
    for found in schema.get_all_operations():
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def fuzz(case) -> None:
            if case.path == "/api/users/me/token":  # it would replace the very token the fuzzer sends
                return
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is fuzzed; the failures are reported together
            failures.append(f"{operation.label}: {exc}"[:1500])
    assert operations >= 55 and len(CALLS) >= 5 * operations, "the fuzzer sent requests and they were checked"
    assert not failures, "\n\n".join(failures)
