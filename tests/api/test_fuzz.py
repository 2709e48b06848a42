"""The API fuzzed from its own OpenAPI document by schemathesis, against the live app over HTTP (SQLite and
PostgreSQL): no answer is a server error, and every answer has a documented status and matches its schema."""

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402  (hypothesis comes with schemathesis)
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from ..conftest import Api  # noqa: E402

EXAMPLES = 12
"""Per operation and per database: enough to reach every route's validation and refusals in about a minute."""


def no_crash(ctx, response, case) -> None:
    """Not a server error: 503 is the documented answer of a route whose scheduler is not running (this API has none)."""
    CALLS.append(response.status_code)
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(f"{response.status_code}: {response.text[:500]}")


CALLS: list[int] = []  # the status of every checked answer
CHECKS = [no_crash, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.slow
def test_no_server_error_and_every_answer_as_documented(api: Api, clinical_config: str, clinical_tasks: list) -> None:
    pid = api.admin.post("/api/projects", json={"name": "fuzzed", "labeling_config": clinical_config}).json()["id"]
    api.admin.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:5])  # so generated ids sometimes exist
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    auth = {"Authorization": api.admin.headers["Authorization"]}
    failures, operations = [], 0
    CALLS.clear()
    for found in schema.get_all_operations():
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def fuzz(case) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is fuzzed; the failures are reported together
            failures.append(f"{operation.label}: {exc}"[:1500])
    assert operations >= 55 and len(CALLS) >= 5 * operations, "the fuzzer sent requests and they were checked"
    assert not failures, "\n\n".join(failures)
