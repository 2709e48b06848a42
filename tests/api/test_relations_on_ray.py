"""Relations end to end on Ray, through HTTP: a project with NER and relations, Label Studio JSON with relations
imported, both kinds trained with the defaults and deployed, a server predicting entities and the relations between
them in Label Studio's shape, relations proposed for the entities an annotator marked, and the export."""

import base64
import json
import random
import re
import time

import httpx
import pytest
from typer.testing import CliRunner

from annoray.api.cli import app

from ..conftest import Api, csrf_of, signed_in, wait_for_trainings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"><Label value="drug"/></Labels>
  <Relations>
    <Relation value="mechanism"/>
    <Relation value="effect"/>
    <Relation value="advise"/>
  </Relations>
</View>"""

DRUGS = ["aspirin", "warfarin", "digoxin", "lithium", "ketoconazole", "imatinib", "cimetidine", "phenytoin", "rifampin",
         "simvastatin", "verapamil", "theophylline", "clarithromycin", "fluoxetine", "methotrexate", "cyclosporine",
         "ibuprofen", "omeprazole", "tramadol", "amiodarone", "metformin", "sertraline", "diltiazem", "quinidine"]
# (template, the relation from the first drug to the second, or None): a third drug, when there is one, is related to
# neither
TEMPLATES = [
    ("{a} increases the plasma concentration of {b}.", "mechanism"),
    ("{a} inhibits the metabolism of {b}, raising its levels.", "mechanism"),
    ("Coadministration of {a} reduced the clearance of {b} by half.", "mechanism"),
    ("{a} may enhance the anticoagulant effect of {b}.", "effect"),
    ("{a} potentiates the sedative effects of {b}, unlike {c}.", "effect"),
    ("The toxicity of {b} is increased when {a} is added.", "effect"),  # from the later drug to the earlier
    ("{a} should not be given together with {b}.", "advise"),
    ("Avoid combining {a} with {b}; {c} may be used instead.", "advise"),
    ("Patients received {a} or {b} during the trial.", None),
    ("{a}, {b} and {c} were all well tolerated.", None),
]


def task(rng: random.Random, annotated: bool) -> dict:
    template, label = rng.choice(TEMPLATES)
    names = dict(zip("abc", rng.sample(DRUGS, 3), strict=True))
    text, regions = "", {}
    for piece in template.replace("{", "\0{").split("\0"):
        if piece.startswith("{"):
            key, rest = piece[1], piece[3:]
            regions[key] = (len(text), len(text) + len(names[key]))
            text += names[key] + rest
        else:
            text += piece
    if not annotated:
        return {"data": {"text": text}}
    result = [{"id": f"d{key}", "from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": s, "end": e, "text": text[s:e], "labels": ["drug"]}} for key, (s, e) in sorted(regions.items())]
    if label:
        result.append({"type": "relation", "from_id": "da", "to_id": "db", "direction": "right", "labels": [label]})
    return {"data": {"text": text}, "annotations": [{"result": result}]}


def wait_until(client, path: str, done, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while not done(state := client.get(path).json()):
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    return state


def test_relations_are_imported_trained_deployed_served_proposed_for_marked_entities_and_exported(training_api: Api) -> None:
    owner = training_api.admin
    rng = random.Random(7)
    pid = owner.post("/api/projects", json={"name": "Interactions", "labeling_config": CONFIG}).json()["id"]
    imported = owner.post(f"/api/projects/{pid}/tasks/import", json=[task(rng, True) for _ in range(200)] + [task(rng, False) for _ in range(10)])
    assert imported.status_code == 201, imported.text

    summary = owner.get(f"/api/projects/{pid}/training-data").json()["kinds"]["relation"]
    counts = summary["label_counts"]
    assert set(counts) == {"mechanism", "effect", "advise", "no relation"} and min(counts.values()) > 10, counts
    assert counts["no relation"] > sum(counts[k] for k in ("mechanism", "effect", "advise")), "every other ordered pair"

    created = owner.post(f"/api/projects/{pid}/trainings", json={"deploy": True})  # Train, no parameter touched
    assert created.status_code == 202, created.text
    jobs = created.json()["jobs"]
    assert [j["kind"] for j in jobs] == ["ner", "relation"]
    (ner, relation), _ = wait_for_trainings(owner, [j["id"] for j in jobs], timeout=600)
    assert (ner["status"], relation["status"], relation["engine"]) == ("succeeded", "succeeded", "spacy.relation.v1"), (ner, relation)
    metrics = relation["metrics"]
    assert metrics["confusion_matrix"]["labels"] == ["mechanism", "effect", "advise", "no relation"]
    assert set(metrics["per_label"]) == {"mechanism", "effect", "advise"}, "no relation is not scored as a relation"
    assert metrics["micro"]["f1"] > metrics["reference"]["micro"]["f1"], metrics
    assert relation["deployment"]["decision"] == "deployed", relation["deployment"]
    config = owner.get(f"/api/projects/{pid}").json()["labeling_config"]
    assert config.count(f'model="{relation["model"]}"') == 3 and f'model="{ner["model"]}"' in config

    server = owner.post("/api/servers", json={"project_id": pid, "name": "interactions"})
    assert server.status_code == 202, server.text
    sid = server.json()["id"]
    state = wait_until(owner, f"/api/servers/{sid}", lambda s: s["status"] not in ("queued", "deploying"))
    assert state["status"] == "running" and {m["kind"] for m in state["models"]} == {"ner", "relation"}, state

    job = owner.post(f"/api/projects/{pid}/preannotations", json={"server_id": sid}).json()  # the 10 unannotated tasks
    done = wait_until(owner, f"/api/preannotations/{job['id']}", lambda j: j["status"] in ("succeeded", "failed"))
    assert (done["status"], done["done"]) == ("succeeded", 10), done
    fresh = owner.get(f"/api/projects/{pid}/tasks", params={"completed": "false"}).json()["items"]
    results = [p["result"] for t in fresh for p in owner.get(f"/api/projects/{pid}/tasks/{t['id']}/predictions").json()]
    assert len(results) == 10, results
    relations = [(r, result) for result in results for r in result if r["type"] == "relation"]
    assert relations, results
    for item, result in relations:
        ids = {r["id"] for r in result if r["type"] == "labels"}
        assert {item["from_id"], item["to_id"]} <= ids and item["direction"] == "right" and 0 < item["score"] <= 1
        assert item["labels"][0] in ("mechanism", "effect", "advise")

    # relations for what an annotator marked: no entity predicted again, the completion's own region ids
    marked = owner.get(f"/api/projects/{pid}/tasks", params={"completed": "true", "page_size": 20}).json()["items"]
    refused = owner.post(f"/api/projects/{pid}/preannotations", json={"server_id": sid, "entities_from": "completion",
                                                                      "task_ids": [fresh[0]["id"]]})
    assert refused.status_code == 422 and "[E826]" in refused.text, refused.text
    cli = ["--url", training_api.url, "--token", owner.headers["Authorization"][7:]]
    ran = CliRunner().invoke(app, ["preannotate", str(pid), "--server", str(sid), "--entities-from", "completion", "--json",
                                   *[arg for t in marked for arg in ("--task", str(t["id"]))], *cli])
    assert ran.exit_code == 0, ran.output
    done = json.loads(ran.stdout)
    assert (done["status"], done["done"], done["entities_from"]) == ("succeeded", 20, "completion"), done
    agree, related = 0, None
    for t in marked:
        completion = owner.get(f"/api/projects/{pid}/tasks/{t['id']}").json()["completions"][0]["result"]
        (prediction,) = owner.get(f"/api/projects/{pid}/tasks/{t['id']}/predictions").json()
        entities = [r for r in prediction["result"] if r["type"] == "labels"]
        assert [(r["id"], r["value"]["start"], r["score"]) for r in entities] == [
            (r["id"], r["value"]["start"], None) for r in completion if r["type"] == "labels"], "the marked entities, as marked"
        gold = {(r["from_id"], r["to_id"], r["labels"][0]) for r in completion if r["type"] == "relation"}
        proposed = {(r["from_id"], r["to_id"], r["labels"][0]) for r in prediction["result"] if r["type"] == "relation"}
        agree += gold == proposed
        related = t["id"] if gold and gold == proposed else related
    assert agree >= 14, f"{agree} of 20 tasks got exactly their annotated relations"

    # the dashboard proposes them too, for every task with a completion; the task list and the CLI show them
    web = signed_in(training_api, owner)
    form = web.get(f"/ui/projects/{pid}/preannotate").text
    assert 'name="entities_from" value="completion"' in form
    posted = web.post(f"/ui/projects/{pid}/preannotations", data={"csrf": csrf_of(form), "server_id": sid, "entities_from": "completion"})
    assert posted.status_code == 303, posted.text
    job = int(posted.headers["location"].split("job=")[1])
    done = wait_until(owner, f"/api/preannotations/{job}", lambda j: j["status"] in ("succeeded", "failed"))
    assert (done["status"], done["total"], done["entities_from"]) == ("succeeded", 200, "completion"), done
    page = web.get(f"/ui/projects/{pid}/tasks", params={"completed": "yes"}).text
    listed = re.findall(r'<li class="relation" data-label="(\w+)">(\w+) <span class="arrow">→</span>', page)
    assert listed and all(label in ("mechanism", "effect", "advise") for label, _ in listed), page[:2000]
    shown = CliRunner().invoke(app, ["tasks", "show", str(pid), str(related), *cli], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and re.search(r"\w+ → (mechanism|effect|advise) → \w+ \([01]\.\d\d\)", shown.stdout), shown.output

    exported = owner.get(f"/api/projects/{pid}/export").json()
    assert sum(r["type"] == "relation" for t in exported for r in t["annotations"][0]["result"]) == sum(
        counts[k] for k in ("mechanism", "effect", "advise"))
    conll = owner.get(f"/api/projects/{pid}/export", params={"format": "conll"})
    assert conll.status_code == 200 and conll.headers["Annoray-Left-Out"].startswith("relations")

    ls = httpx.Client(base_url=training_api.url, timeout=60, headers={  # Label Studio's ML backend calls, as it sends them
        "Authorization": "Basic " + base64.b64encode(f"labelstudio:{owner.headers['Authorization'][7:]}".encode()).decode()})
    assert ls.post("/ls/setup", json={"project": "7.1764770000", "schema": CONFIG}).status_code == 200
    text = "ketoconazole increases the plasma concentration of imatinib."  # a template it learnt
    answer = ls.post("/ls/predict", json={"project": "7.1764770000", "tasks": [{"id": 1, "data": {"text": text}}]})
    assert answer.status_code == 200, answer.text
    (predicted,) = answer.json()["results"]
    assert (["mechanism"], "right") in [(r["labels"], r["direction"]) for r in predicted["result"] if r["type"] == "relation"]
    assert owner.get("/api/projects").json()[-1]["id"] == pid, "Label Studio's project is linked to this one"
    assert owner.delete(f"/api/servers/{sid}").status_code == 204
