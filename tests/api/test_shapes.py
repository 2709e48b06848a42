"""Shapes a client can rely on: kinds and models apart, every timestamp with its zone, a missing token said plainly."""

from datetime import datetime

from ..conftest import NER_CONFIG, Api, span_task


def test_kinds_and_models_are_apart_and_every_timestamp_has_its_zone(api: Api) -> None:
    pid = api.admin.post("/api/projects", json={"name": "shapes", "labeling_config": NER_CONFIG.format(label="Drug")}).json()["id"]
    api.admin.post(f"/api/projects/{pid}/tasks/import", json=[span_task("Take aspirin daily.", "aspirin", "Drug")])
    project = api.admin.get(f"/api/projects/{pid}").json()
    assert set(project["kinds"]) == {"ner"} and project["models"] == []
    (task,) = api.admin.get(f"/api/projects/{pid}/tasks").json()["items"]
    for stamp in (project["created_at"], task["created_at"]):
        assert datetime.fromisoformat(stamp).tzinfo is not None, stamp


def test_a_client_without_a_token_says_so_before_it_calls(monkeypatch) -> None:
    import pytest

    from annoray.api.client import AnnorayClient, MissingToken

    monkeypatch.setenv("ANNORAY_TOKEN", "  ")
    with pytest.raises(MissingToken, match="no API token: set ANNORAY_TOKEN or pass --token"):
        AnnorayClient("http://127.0.0.1:9")
