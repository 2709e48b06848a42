"""Relations on the DDI-2013 drug-drug interaction corpus, through the platform: NER and relations trained on Ray
Train over HTTP with the engines' defaults, scored with gold entities and end to end.

The corpus (``../shared/data/relations``, 3,000 sentences; CC BY-NC, so it stays outside the repository) is
imported as Label Studio JSON, each sentence a task whose completion holds its entities and relations, tagged
``train`` (80%) or ``test`` (20%) by sentence (seeded shuffle). The config's relations are undirected
(``directed="false"``): DDI interactions are symmetric. One training request (``"split": "tags"``, ``deploy``)
trains both kinds; a server of the deployed models then pre-annotates the test tasks twice:

- with ``entities_from: "completion"``: relations between the gold entities (the annotator's workflow);
- from the text alone: entities predicted, then the relations between them (a relation counts only when both
  of its entities' spans match exactly).

It prints entity F1 and relation micro F1 (over the four interaction types, without direction) both ways, beside the
relation model's own held-out figures, a majority baseline (the most frequent interaction type for every candidate
pair, on the same split) and the published reference (PubMedBERT, 0.82 with gold entities on the official test set,
trained on the full training set after pretraining, none of which is here).

    python benchmarks/relations.py --data ../shared/data/relations [--sentences 3000] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import httpx

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer
from annoray.platform.settings import Settings
from annoray.platform.store.home import init_home

GIB = 2**30
ENTITIES = ["drug", "brand", "group", "drug_n"]
RELATIONS = ["mechanism", "effect", "advise", "int"]
CONFIG = f"""<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">{"".join(f'<Label value="{e}"/>' for e in ENTITIES)}</Labels>
  <Relations directed="false">{"".join(f'<Relation value="{r}"/>' for r in RELATIONS)}</Relations>
</View>"""


def task(row: dict, tag: str) -> dict:
    result = [{"id": e["id"], "from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": e["start"], "end": e["end"], "text": row["text"][e["start"]:e["end"]], "labels": [e["label"]]}}
              for e in row["entities"]]
    result += [{"type": "relation", "from_id": r["from"], "to_id": r["to"], "direction": "right", "labels": [r["label"]]}
               for r in row["relations"]]
    return {"data": {"text": row["text"]}, "annotations": [{"result": result}], "meta": {"tags": [tag]}}


def relations_of(result: list[dict]) -> set[tuple[frozenset, str]]:
    """The relations of a Label Studio result as (the two entities' spans, without order; label)."""
    spans = {r["id"]: (r["value"]["start"], r["value"]["end"]) for r in result if r.get("type") == "labels"}
    return {(frozenset((spans[r["from_id"]], spans[r["to_id"]])), r["labels"][0]) for r in result
            if r.get("type") == "relation" and r["from_id"] in spans and r["to_id"] in spans}


def entities_of(result: list[dict]) -> set[tuple[int, int, str]]:
    return {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result if r.get("type") == "labels"}


def f1(gold: list[set], predicted: list[set]) -> tuple[float, float, float]:
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    fp = sum(len(p - g) for g, p in zip(gold, predicted, strict=True))
    fn = sum(len(g - p) for g, p in zip(gold, predicted, strict=True))
    precision, recall = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def wait(client: httpx.Client, path: str, ended: tuple[str, ...]) -> dict:
    while (state := client.get(path).json())["status"] not in ended:
        time.sleep(2)
    return state


def predictions(client: httpx.Client, pid: int, server_id: int, task_ids: list[int], **body: object) -> list[list[dict]]:
    """One pre-annotation job over ``task_ids``; each task's newest prediction's result."""
    job = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server_id, "task_ids": task_ids, **body})
    job.raise_for_status()
    done = wait(client, f"/api/preannotations/{job.json()['id']}", ("succeeded", "failed", "cancelled"))
    if done["status"] != "succeeded" or done["failed"]:
        raise SystemExit(f"pre-annotation {done['status']}: {done}")
    return [max(client.get(f"/api/projects/{pid}/tasks/{t}/predictions").json(), key=lambda p: p["id"])["result"]
            for t in task_ids]


def main() -> None:
    import ray

    from annoray.scheduler.start import start_scheduler

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/relations")
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=None, help="default: each engine's own default")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.data / "train.jsonl").read_text().splitlines() if line.strip()]
    random.Random(0).shuffle(rows)
    rows = rows[:args.sentences]
    cut = round(len(rows) * 0.8)

    with tempfile.TemporaryDirectory(prefix="annoray-relations-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        engine = init_home(settings)
        ray.init(address="local", num_cpus=16, _memory=64 * GIB, include_dashboard=False, log_to_driver=False,
                 namespace=settings.scheduler.namespace)
        start_scheduler(settings)
        token = settings.admin_token_path.read_text().strip()
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
            pid = client.post("/api/projects", json={"name": "DDI", "labeling_config": CONFIG}).raise_for_status().json()["id"]
            tasks = [task(row, "train" if i < cut else "test") for i, row in enumerate(rows)]
            for at in range(0, len(tasks), 500):
                client.post(f"/api/projects/{pid}/tasks/import", json=tasks[at:at + 500]).raise_for_status()
            counts = client.get(f"/api/projects/{pid}/training-data", params={"split": "tags"}).json()["kinds"]["relation"]["label_counts"]
            print(f"{len(rows)} sentences ({cut} train, {len(rows) - cut} test); candidate pairs per label: {counts}", flush=True)

            began = time.perf_counter()
            body = {"split": "tags", "deploy": "force"} | ({"params": {"epochs": args.epochs}} if args.epochs else {})
            jobs = client.post(f"/api/projects/{pid}/trainings", json=body).raise_for_status().json()["jobs"]
            ner, relation = (wait(client, f"/api/trainings/{j['id']}", ("succeeded", "failed", "cancelled")) for j in jobs)
            for job in (ner, relation):
                if job["status"] != "succeeded":
                    raise SystemExit(f"training {job['id']} {job['status']}: {job['error']}")
            print(f"trained both in {time.perf_counter() - began:.0f} s ({relation['params']})", flush=True)

            server = client.post("/api/servers", json={"project_id": pid, "name": "ddi"}).raise_for_status().json()
            if wait(client, f"/api/servers/{server['id']}", ("running", "failed"))["status"] != "running":
                raise SystemExit("the server failed")
            test = []
            for page in range(1, 1 + -(-len(rows) // 100)):
                items = client.get(f"/api/projects/{pid}/tasks", params={"page": page, "page_size": 100, "tags": "test"}).json()["items"]
                test += [t["id"] for t in items]
            gold = [client.get(f"/api/projects/{pid}/tasks/{t}").json()["completions"][0]["result"] for t in test]
            end_to_end = predictions(client, pid, server["id"], test)
            marked = predictions(client, pid, server["id"], test, entities_from="completion")

    reference = relation["metrics"]["reference"]
    gold_relations = [relations_of(g) for g in gold]
    print(f"\nentity F1 (exact spans and label), {len(test)} test sentences:")
    print(f"  the NER model's own held-out score  {ner['metrics']['micro']['f1']:.3f}")
    print(f"  its pre-annotations                 {f1([entities_of(g) for g in gold], [entities_of(p) for p in end_to_end])[2]:.3f}")
    print("relation micro F1 (mechanism, effect, advise, int; without direction):")
    p, r, f = f1(gold_relations, [relations_of(m) for m in marked])
    print(f"  gold entities (entities_from)       {f:.3f}  (P {p:.3f}, R {r:.3f})   goal >= 0.55")
    print(f"    the relation model's own score    {relation['metrics']['micro']['f1']:.3f}")
    p, r, f = f1(gold_relations, [relations_of(e) for e in end_to_end])
    print(f"  end to end (entities predicted)     {f:.3f}  (P {p:.3f}, R {r:.3f})   goal >= 0.40")
    print(f"  majority baseline, gold entities    {reference['micro']['f1']:.3f}  ({reference['name']})")
    print("  published, gold entities            0.824 (PubMedBERT, official test set, full training set, pretraining)")


if __name__ == "__main__":
    main()
