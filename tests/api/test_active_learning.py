"""Active learning's count through HTTP: each task counts once, when it first has a completion that can train."""

import pytest

from ..conftest import Api, refused
from .test_flow import TEXT, ner, team, temporality  # noqa: F401  (team is a fixture)


def state(client, pid: int) -> dict:
    return client.get(f"/api/projects/{pid}/active-learning").json()


def test_settings_are_checked_whole_and_only_owners_or_managers_change_them(api: Api, team) -> None:
    pid, owner, annotators, _ = team
    assert state(owner, pid) | {"last": {}} == {"enabled": False, "every": 50, "deploy": False, "gate": True, "metric": "micro.f1",
                                                "params": {}, "counter": 0, "pending": False, "last": {}}
    body = refused(api, lambda: owner.put(f"/api/projects/{pid}/active-learning", json={
        "enabled": True, "metric": "f2", "params": {"epochs": 0}}), 422)
    assert {e["field"] for e in body["errors"]} == {"metric", "params.epochs"} and "micro.f1" in body["errors"][0]["message"]
    refused(api, lambda: owner.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 0}), 422)
    refused(api, lambda: annotators["ann"].put(f"/api/projects/{pid}/active-learning", json={"enabled": True}), 403)
    r = owner.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 7, "deploy": True, "metric": "macro.f1",
                                                                 "params": {"epochs": 3}})
    assert r.status_code == 200, r.text
    assert r.json() | {"params": {}} == {"enabled": True, "every": 7, "deploy": True, "gate": True, "metric": "macro.f1", "params": {},
                                         "counter": 0, "pending": False, "last": {}}
    assert r.json()["params"]["epochs"] == 3 and owner.get(f"/api/projects/{pid}").json()["active_learning"]["every"] == 7


def test_each_task_counts_once_when_it_first_has_an_eligible_completion(team) -> None:
    pid, owner, annotators, reviewer = team
    ann, bob = annotators["ann"], annotators["bob"]
    before = owner.post(f"/api/projects/{pid}/tasks/import", json=[
        {"data": {"text": TEXT}, "annotations": [{"result": [temporality("Recent")]}]}]).json()["task_ids"]
    assert owner.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 3}).status_code == 200
    tids = owner.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": TEXT}}] * 4).json()["task_ids"]

    def submit(client, tid: int, status: str = "submitted") -> int:
        r = client.post(f"/api/projects/{pid}/tasks/{tid}/completions", json={"result": [ner(15, 25, "Condition")], "status": status})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    submit(ann, before[0])
    assert state(owner, pid)["counter"] == 0, "a task eligible before active learning was on does not count"
    draft = submit(ann, tids[0], "draft")
    assert state(owner, pid)["counter"] == 0, "drafts never count"
    ann.patch(f"/api/projects/{pid}/completions/{draft}", json={"status": "submitted"})
    assert state(owner, pid)["counter"] == 1
    ann.patch(f"/api/projects/{pid}/completions/{draft}", json={"result": [ner(15, 20, "Condition")]})
    submit(bob, tids[0])
    assert state(owner, pid)["counter"] == 1, "an edited completion, or a second one on a counted task, never counts again"
    rejected = submit(bob, tids[1])
    reviewer.post(f"/api/projects/{pid}/completions/{rejected}/review", json={"status": "rejected"})
    assert state(owner, pid)["counter"] == 2
    submit(ann, tids[1])
    assert state(owner, pid)["counter"] == 2
    submit(ann, tids[2])
    due = state(owner, pid)
    assert (due["counter"], due["pending"]) == (0, True), "the third newly eligible task makes a training due"
    submit(ann, tids[3])
    assert (state(owner, pid)["counter"], state(owner, pid)["pending"]) == (1, True)

    owner.put(f"/api/projects/{pid}/active-learning", json={"enabled": False})
    assert (state(owner, pid)["counter"], state(owner, pid)["pending"]) == (1, False), "turning it off drops the due training"
    extra = owner.post(f"/api/projects/{pid}/tasks/import", json=[
        {"data": {"text": TEXT}, "annotations": [{"result": [temporality("Recent")]}]}] * 3).json()["task_ids"]
    assert state(owner, pid)["counter"] == 1, "nothing counts while it is off"
    owner.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 2})
    assert state(owner, pid)["counter"] == 0
    owner.post(f"/api/projects/{pid}/tasks/import", json=[
        {"data": {"text": TEXT}, "annotations": [{"result": [temporality("Recent")]}]}] * 5)
    assert (state(owner, pid)["counter"], state(owner, pid)["pending"]) == (1, True), "imported annotations count; one trigger"
    assert len(extra) == 3


@pytest.mark.postgres
def test_concurrent_submissions_neither_lose_nor_double_a_count(api: Api, team) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pid, owner, annotators, _ = team
    owner.put(f"/api/projects/{pid}/active-learning", json={"enabled": True, "every": 1000})
    tids = owner.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": TEXT}}] * 20).json()["task_ids"]

    def submit(args: tuple) -> int:
        client, tid = args
        return client.post(f"/api/projects/{pid}/tasks/{tid}/completions",
                           json={"result": [ner(15, 25, "Condition")], "status": "submitted"}).status_code

    work = [(annotators["ann"], t) for t in tids] + [(annotators["bob"], t) for t in tids]
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(submit, work)) == {201}
    assert state(owner, pid)["counter"] == 20
