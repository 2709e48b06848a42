"""Fixtures of the API tests."""

import httpx
import pytest

from ..conftest import Api


@pytest.fixture
def clinic(api: Api, clinical_config: str, clinical_tasks: list) -> tuple[int, httpx.Client]:
    """A clinical project of 60 sample tasks, owned by olivia."""
    owner = api.user("olivia")
    pid = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config}).json()["id"]
    assert owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:60]).status_code == 201
    return pid, owner
