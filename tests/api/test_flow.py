"""Through HTTP alone: users, a mixed project, import, completions, review, and exports that follow the selection rules."""

import io
import tarfile

import pytest

from ..conftest import Api, count_rows

pytestmark = pytest.mark.both_databases  # the end-to-end flow on each database

TEXT = "Patient denies chest pain."


def ner(start: int, end: int, label: str, text: str = TEXT) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def temporality(value: str) -> dict:
    return {"from_name": "temporality", "to_name": "text", "type": "choices", "value": {"choices": [value]}}


@pytest.fixture
def team(api: Api, clinical_config: str):
    owner = api.user("olivia")
    annotators = {name: api.user(name) for name in ("ann", "bob")}
    reviewer = api.user("rita")
    project = owner.post("/api/projects", json={"name": "clinic", "labeling_config": clinical_config})
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    for username, role, priority in (("ann", "annotator", 1), ("bob", "annotator", 5), ("rita", "reviewer", 0)):
        r = owner.post(f"/api/projects/{pid}/members", json={"username": username, "role": role, "priority": priority})
        assert r.status_code == 201, r.text
    return pid, owner, annotators, reviewer


def test_project_shows_its_derived_model_kinds(team) -> None:
    pid, owner, *_ = team
    body = owner.get(f"/api/projects/{pid}").json()
    assert body["role"] == "owner"
    assert body["kinds"]["ner"]["labels"] == ["Condition"]
    assert body["kinds"]["assertion"]["labels"] == ["Present", "Absent"]
    assert body["kinds"]["classification"].items() >= {"name": "temporality", "choice": "single"}.items()


def test_import_sample_project_and_page_through_tasks(api: Api, team, clinical_tasks: list) -> None:
    pid, owner, *_ = team
    clinical_tasks = clinical_tasks[:300]  # the quickstart (the README test) imports all 1,657
    r = owner.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks)
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == len(clinical_tasks) == len(r.json()["task_ids"])
    page = owner.get(f"/api/projects/{pid}/tasks", params={"page": 2, "page_size": 50}).json()
    assert page["total"] == len(clinical_tasks) and page["page"] == 2 and len(page["items"]) == 50
    assert page["items"][0]["id"] == r.json()["task_ids"][50]
    assert count_rows(api.engine, "completions") == sum(1 for t in clinical_tasks if t.get("annotations"))
    summary = owner.get(f"/api/projects/{pid}/training-data").json()
    assert summary["kinds"]["ner"]["label_counts"]["Condition"] > 250
    assert set(summary["kinds"]) == {"ner", "assertion", "classification"}


def test_completions_reviews_and_exports_follow_the_selection_rules(team) -> None:
    pid, owner, annotators, reviewer = team
    ann, bob = annotators["ann"], annotators["bob"]
    tasks = [{"data": {"text": TEXT}, "meta": {"tags": [tag]}} for tag in ("a", "a", "a", "b")]
    t1, t2, t3, t4 = owner.post(f"/api/projects/{pid}/tasks/import", json=tasks).json()["task_ids"]

    def complete(client, tid, label, status="submitted", choice="Recent"):
        r = client.post(f"/api/projects/{pid}/tasks/{tid}/completions",
                        json={"result": [ner(15, 25, "Condition"), ner(15, 25, label), temporality(choice)], "status": status})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    # t1: bob has the higher priority, but the reviewer accepts ann's: ann's wins.
    ann_t1 = complete(ann, t1, "Absent")
    complete(bob, t1, "Present")
    assert reviewer.post(f"/api/projects/{pid}/completions/{ann_t1}/review", json={"status": "accepted"}).status_code == 200
    # t2: no review: bob (priority 5) wins over ann (priority 1), though ann's is newer.
    complete(bob, t2, "Present", choice="Historical")
    complete(ann, t2, "Absent")
    # t3: bob's is rejected, ann's is a draft: nothing is eligible.
    bob_t3 = complete(bob, t3, "Present")
    reviewer.post(f"/api/projects/{pid}/completions/{bob_t3}/review", json={"status": "rejected"})
    complete(ann, t3, "Absent", status="draft")
    # t4: tagged 'b'.
    complete(ann, t4, "Absent")

    exported = owner.get(f"/api/projects/{pid}/export", params={"format": "json"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    chosen = {t["id"]: t["annotations"][0]["result"][1]["value"]["labels"][0] for t in exported.json()}
    assert chosen == {t1: "Absent", t2: "Present", t4: "Absent"}

    tagged = owner.get(f"/api/projects/{pid}/export", params={"format": "json", "tags": "a"}).json()
    assert [t["id"] for t in tagged] == [t1, t2]
    reviewed = owner.get(f"/api/projects/{pid}/export", params={"format": "json", "reviewed_only": True}).json()
    assert [t["id"] for t in reviewed] == [t1]

    conll = owner.get(f"/api/projects/{pid}/export", params={"format": "conll", "tags": "a"}).text
    blocks = conll.strip().split("\n\n")
    assert blocks[0] == "-DOCSTART- -X- -X- O" and len(blocks) == 3
    assert blocks[1].splitlines() == [
        "Patient -X- -X- O", "denies -X- -X- O", "chest -X- -X- B-Condition", "pain -X- -X- I-Condition", ". -X- -X- O",
    ]

    tar_bytes = owner.get(f"/api/projects/{pid}/export", params={"format": "spacy"}).content
    from spacy.tokens import DocBin
    import spacy

    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        (member,) = tar.getmembers()
        docs = list(DocBin().from_bytes(tar.extractfile(member).read()).get_docs(spacy.blank("en").vocab))
    assert [[(e.text, e.label_) for e in d.ents] for d in docs] == [[("chest pain", "Condition")]] * 3
    assert [d.cats["Historical"] for d in docs] == [0.0, 1.0, 0.0]

    summary = owner.get(f"/api/projects/{pid}/training-data", params={"kinds": ["assertion"]}).json()
    assert summary["tasks_selected"] == 3
    assert summary["kinds"]["assertion"]["label_counts"] == {"Present": 1, "Absent": 2}
    by_tags = owner.get(f"/api/projects/{pid}/training-data", params={"split": "tags"}).json()
    assert {"[E309]", "[E310]"} <= {e[:6] for e in by_tags["errors"]}


def test_author_edits_a_draft_then_submits_it(team) -> None:
    pid, owner, annotators, reviewer = team
    (tid,) = owner.post(f"/api/projects/{pid}/tasks/import", json=[{"data": {"text": TEXT}}]).json()["task_ids"]
    ann = annotators["ann"]
    cid = ann.post(f"/api/projects/{pid}/tasks/{tid}/completions", json={"result": [], "status": "draft"}).json()["id"]
    assert reviewer.post(f"/api/projects/{pid}/completions/{cid}/review", json={"status": "accepted"}).status_code == 409
    assert annotators["bob"].patch(f"/api/projects/{pid}/completions/{cid}", json={"status": "submitted"}).status_code == 403
    r = ann.patch(f"/api/projects/{pid}/completions/{cid}", json={"result": [temporality("Recent")], "status": "submitted"})
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert owner.get(f"/api/projects/{pid}/training-data").json()["tasks_selected"] == 1


def test_a_completion_is_created_from_a_prediction_which_stays_unchanged(team) -> None:
    pid, owner, annotators, _ = team
    task = {"data": {"text": TEXT}, "predictions": [{"result": [ner(15, 25, "Condition")], "score": 0.9, "model_version": "ner_v1"}]}
    (tid,) = owner.post(f"/api/projects/{pid}/tasks/import", json=[task]).json()["task_ids"]
    (prediction,) = owner.get(f"/api/projects/{pid}/tasks/{tid}/predictions").json()
    assert prediction["score"] == 0.9 and prediction["model_version"] == "ner_v1"
    r = annotators["ann"].post(f"/api/projects/{pid}/tasks/{tid}/completions/from-prediction/{prediction['id']}")
    assert r.status_code == 201 and r.json()["prediction_id"] == prediction["id"] and r.json()["status"] == "draft"
    assert owner.get(f"/api/projects/{pid}/tasks/{tid}/predictions").json() == [prediction]
