"""Visual NER on real scanned forms (EC-FUNSD), through the platform: the layout-aware engine against the same model
on the words alone.

EC-FUNSD (``../shared/data/ec_funsd``; its images are for research use, so the data stays outside the repository) has
149 forms with gold words, their boxes and entity labels (header, question, answer). The forms in ``data.train.txt``
order: the first 119 are tagged train, the next 30 test. Everything goes through a live annoray over HTTP, on a local
Ray shaped like one 16 CPU / 64 GB node: the forms are uploaded, their entities imported as Label Studio rectangles,
and each engine trains on Ray Train with ``"split": "tags"``. Twice: with the gold words given to each page
(``PUT /api/files/{fid}/pages/{n}/ocr``, as a user with an OCR of their own does) and with the platform's own OCR.
In one run this prints:

- entity F1 (exact word spans) on the 30 test forms of the default engine (``spacy.visual_ner.v1``, layout on) and of
  ``spacy_words.visual_ner.v1`` (the same model on the words alone), same data, same budget, gold and OCR words;
- the layout's gain over text only, as a difference of F1;
- the 30 test forms as pre-annotated by the OCR layout model's server, scored as a user judges them: each region
  counted as the form's gold words it covers, against the gold rectangles read the same way (an entity whose words
  the OCR missed counts as missed);
- OCR word recall against the gold words, and OCR pages per second: on this machine from the upload to the last page's
  words, and per task from the pages' own timings;
- pre-annotation pages per second with 1 and 2 replicas (``--replicas``): a server with the layout model (OCR words)
  pre-annotating every page of the project three times over (after a first job that warms it up), from the
  first request to the last prediction stored, and the ratio;
- OCR pages per second with 1 and 2 CPUs (``--cpus``): the first ``--scaling-forms`` forms uploaded to a fresh
  platform on a local Ray of that many CPUs, from the upload to the last page's words (each page is a Ray task of
  one CPU, spread over the cluster), and the ratio. ``--only-scaling`` prints this alone.

``--ablation`` prints instead what each change to the platform's Visual NER brought, in this process (no Ray, no
HTTP; the same OCR function, the same tagging of words by rectangles and the same engine code as the platform): the
forms read by the OCR as uploaded, upscaled, and upscaled as sparse text as the platform does now (word recall,
pages/s on one core), and on each word set (and the gold words) the entity F1 of the same model on the words alone,
with the layout it had first (grid cell, line shape), with the gaps around each word added, and with the word above
each word added (the default), with the engine's default parameters; then the default again at other seeds
(``--seeds``) on the platform's OCR words.

    python benchmarks/visual_ner.py --data ../shared/data/ec_funsd [--epochs N] [--forms 149] [--cpus 1 2] [--replicas 1 2] [--only-scaling]
    python benchmarks/visual_ner.py --data ../shared/data/ec_funsd --ablation [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract: one core per OCR task, as its resources say

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ocr_backends import matched  # noqa: E402  (beside this script)

from annoray.api.app import create_app  # noqa: E402
from annoray.api.server import BackgroundServer  # noqa: E402
from annoray.platform.settings import ResourceSpec, Settings  # noqa: E402
from annoray.platform.store.home import init_home  # noqa: E402

GIB = 2**30
CONFIG = """<View>
  <Image name="image" value="$ocr"/>
  <RectangleLabels name="label" toName="image">
    <Label value="header"/><Label value="question"/><Label value="answer"/>
  </RectangleLabels>
</View>"""
ENGINES = {"layout": "spacy", "text only": "spacy_words"}
LABELS = ["header", "question", "answer"]


def load_form(data: Path, name: str) -> tuple[dict, list[list], list[tuple[str, tuple]]]:
    """A form's json, its gold words in reading order ([text, x0, y0, x1, y1, block, line]) and its entities' boxes."""
    doc = json.loads((data / "jsons" / name).read_text())
    words, by_id = [], {}
    for block, segment in enumerate(doc["document"]):
        for w in segment["words"]:
            if w["text"].strip():
                by_id[w["id"]] = len(words)
                words.append([w["text"], *w["box"], block, block])
    entities = []
    for entity in doc["label_entities"]:
        boxes = [words[by_id[i]][1:5] for i in entity["word_idx"] if i in by_id]
        if boxes and entity["label"] in LABELS:
            entities.append((entity["label"], (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                               max(b[2] for b in boxes), max(b[3] for b in boxes))))
    return doc, words, entities


def task(doc: dict, url: str, entities: list[tuple[str, tuple]], tag: str) -> dict:
    """The form's gold entities as Label Studio rectangles, in percent of the page."""
    width, height = doc["img"]["width"], doc["img"]["height"]
    result = [{"id": f"e{i}", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
               "original_width": width, "original_height": height,
               "value": {"x": 100 * x0 / width, "y": 100 * y0 / height, "width": 100 * (x1 - x0) / width,
                         "height": 100 * (y1 - y0) / height, "rotation": 0, "rectanglelabels": [label]}}
              for i, (label, (x0, y0, x1, y1)) in enumerate(entities) if x1 > x0 and y1 > y0]
    return {"data": {"ocr": url}, "annotations": [{"result": result}], "meta": {"tags": [tag]}}


def uploaded(client: httpx.Client, response: httpx.Response) -> dict:
    """An upload's answer, following its work when the pages took longer than the request's wait (202)."""
    response.raise_for_status()
    if response.status_code != 202:
        return response.json()
    while (state := client.get(response.headers["location"]).json())["status"] in ("queued", "running"):
        time.sleep(0.5)
    if state["status"] != "succeeded":
        raise RuntimeError(f"the upload failed: {state['error']}")
    return state["result"]


def project(client: httpx.Client, data: Path, names: list[str], cut: int, gold: bool) -> tuple[int, list[dict]]:
    """Upload the forms, give each its gold words when ``gold``, import the entities; wait until every page has its
    words. Returns the project and its pages (with their gold words)."""
    pid = client.post("/api/projects", json={"name": f"funsd-{'gold' if gold else 'ocr'}-{uuid.uuid4().hex[:6]}",
                                              "labeling_config": CONFIG}).raise_for_status().json()["id"]
    pages, tasks = [], []
    for start in range(0, len(names), 10):
        batch = [(name, *load_form(data, name)) for name in names[start:start + 10]]
        files = [("file", (doc["img"]["fname"].rsplit("/", 1)[-1], (data / doc["img"]["fname"]).read_bytes(), "image/png"))
                 for _, doc, _, _ in batch]
        items = uploaded(client, client.post(f"/api/projects/{pid}/files", files=files))["items"]
        for i, ((name, doc, words, entities), item) in enumerate(zip(batch, items, strict=True)):
            url = item["pages"][0]["url"]
            if gold:
                client.put(f"{url}/ocr", json={"words": [{"text": w[0], "box": w[1:5], "block": w[5], "line": w[6]}
                                                         for w in words]}).raise_for_status()
            pages.append({"url": url, "gold": words, "entities": entities, "test": start + i >= cut})
            tasks.append(task(doc, url, entities, "train" if start + i < cut else "test"))
    client.post(f"/api/projects/{pid}/tasks/import", json=tasks).raise_for_status()
    for page in pages:
        while (ocr := client.get(f"{page['url']}/ocr").json())["ocr"] not in ("done", "failed"):
            time.sleep(1)
        page["ocr"] = ocr
    return pid, pages


def train(client: httpx.Client, pid: int, engine: str, epochs: int | None) -> dict:
    """A training of the engine family with the kind's default parameters (``epochs`` alone set when given)."""
    response = client.post(f"/api/projects/{pid}/trainings", json={
        "engine": engine, "split": "tags", "params": {} if epochs is None else {"epochs": epochs}})
    if response.status_code != 202:
        raise SystemExit(f"the training request was refused: {response.text}")
    return response.json()["jobs"][0]


def finished(client: httpx.Client, job_id: int) -> dict:
    while (job := client.get(f"/api/trainings/{job_id}").json())["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(2)
    if job["status"] != "succeeded":
        raise SystemExit(f"training {job_id} {job['status']}: {job['error']}\n{client.get(f'/api/trainings/{job_id}/log').text[-3000:]}")
    return job


def preannotate(client: httpx.Client, pid: int, model: str, task_ids: list[int], replicas: int = 1, rounds: int = 3) -> float:
    """Pages per second of a server with ``model`` and ``replicas``: ``rounds`` jobs of ``task_ids`` one after the
    other, from the first request to the last prediction stored, after one untimed job."""
    server = client.post("/api/servers", json={"models": [model], "name": f"funsd-{replicas}",
                                               "replicas": replicas}).raise_for_status().json()
    while (state := client.get(f"/api/servers/{server['id']}").json())["status"] not in ("running", "failed"):
        time.sleep(1)
    if state["status"] != "running":
        raise SystemExit(f"server {state['status']}: {state['error']}")
    began = time.perf_counter()
    for round_ in range(1 + rounds):  # the first job, untimed, pays each replica's first calls
        if round_ == 1:
            began = time.perf_counter()
        job = client.post(f"/api/projects/{pid}/preannotations", json={"server_id": server["id"], "task_ids": task_ids}).json()
        while (job := client.get(f"/api/preannotations/{job['id']}").json())["status"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.2)
        seconds = time.perf_counter() - began
        if job["status"] != "succeeded" or job["failed"]:
            raise SystemExit(f"pre-annotation {job['status']}: {job}")
    client.delete(f"/api/servers/{server['id']}").raise_for_status()
    return rounds * len(task_ids) / seconds


def region_f1(client: httpx.Client, pid: int, pages: list[dict]) -> tuple[float, float, float]:
    """Micro F1, P and R of the test pages' latest predictions as a user judges them: an entity is the set of the
    form's gold words whose centre lies in its region's rectangle, against the gold entities' rectangles read the same
    way; a region that covers no gold word counts as a wrong entity."""
    def covered(boxes: list[tuple[float, ...]], words: list[list]) -> frozenset[int]:
        return frozenset(i for i, w in enumerate(words) for x0, y0, x1, y1 in boxes
                         if x0 <= (w[1] + w[3]) / 2 <= x1 and y0 <= (w[2] + w[4]) / 2 <= y1)

    by_url = {p["url"]: p for p in pages}
    found = gold = hits = 0
    for item in client.get(f"/api/projects/{pid}/tasks", params={"page_size": 500}).json()["items"]:
        page = by_url[item["data"]["ocr"]]
        if not page["test"]:
            continue
        expected = {(label, covered([box], page["gold"])) for label, box in page["entities"]}
        regions: dict[str, tuple[str, list[tuple[float, ...]]]] = {}
        predictions = client.get(f"/api/projects/{pid}/tasks/{item['id']}/predictions").json()
        for r in predictions[-1]["result"] if predictions else []:  # CONFIG's RectangleLabels: box and label in one item
            v, w, h = r["value"], r["original_width"] / 100, r["original_height"] / 100
            _, boxes = regions.setdefault(r["id"], (v["rectanglelabels"][0], []))
            boxes.append((v["x"] * w, v["y"] * h, (v["x"] + v["width"]) * w, (v["y"] + v["height"]) * h))
        predicted = {(label, covered(boxes, page["gold"])) for label, boxes in regions.values()}
        found, gold, hits = found + len(predicted), gold + len(expected), hits + len(predicted & expected)
    precision, recall = hits / max(found, 1), hits / max(gold, 1)
    return 2 * precision * recall / max(precision + recall, 1e-9), precision, recall


def platform(home: Path) -> tuple[Settings, object]:
    """A home whose licence issuer is this benchmark, with Visual NER sized so that two trainings share the node."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from annoray.platform.access.licenses import public_key_text

    key = Ed25519PrivateKey.generate()
    settings = Settings(home=home)
    spec = ResourceSpec(cpus=8, memory_gb=32)
    settings = settings.model_copy(update={
        "licenses": settings.licenses.model_copy(update={"issuers": {"benchmark": public_key_text(key)}}),
        "training": settings.training.model_copy(update={"resources": settings.training.resources | {"visual_ner": spec}}),
    })
    return settings, key


def ocr_scaling(data: Path, names: list[str], cpus: list[int]) -> dict[int, float]:
    """OCR pages per second, upload to the last page's words, on a fresh platform and local Ray of each CPU count."""
    import ray

    from annoray.scheduler.start import start_scheduler, stop_scheduler

    rates = {}
    for count in cpus:
        with tempfile.TemporaryDirectory(prefix="annoray-ocr-bench-") as tmp:
            settings, _ = platform(Path(tmp) / "home")
            engine = init_home(settings)
            ray.init(address="local", num_cpus=count, include_dashboard=False, log_to_driver=False,
                     namespace=settings.scheduler.namespace)
            start_scheduler(settings)
            token = settings.admin_token_path.read_text().strip()
            with BackgroundServer(create_app(settings, engine=engine)) as url:
                client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
                began = time.perf_counter()
                _, pages = project(client, data, names, len(names), gold=False)
                rates[count] = len(pages) / (time.perf_counter() - began)
                print(f"OCR with {count} CPU{'s' if count > 1 else ''}: {rates[count]:.2f} pages/s over {len(pages)} pages", flush=True)
                client.close()
            stop_scheduler(settings)
            ray.shutdown()
            engine.dispose()
    return rates


def main() -> None:
    import ray

    from annoray.platform.access.licenses import sign_license
    from annoray.scheduler.start import start_scheduler

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ec_funsd")
    parser.add_argument("--epochs", type=int, help="the kind's default when not given")
    parser.add_argument("--forms", type=int, default=149)
    parser.add_argument("--cpus", type=int, nargs="*", default=[1, 2], help="CPU counts of the OCR scaling runs")
    parser.add_argument("--scaling-forms", type=int, default=20)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="replica counts of the pre-annotation runs")
    parser.add_argument("--only-scaling", action="store_true", help="only the OCR pages/s with each of --cpus")
    parser.add_argument("--ablation", action="store_true", help="only each change's F1 and OCR figures, in this process")
    parser.add_argument("--seeds", type=int, default=3, help="--ablation: seeds of the default engine on the platform's OCR")
    args = parser.parse_args()
    names = [line.strip() for line in (args.data / "data.train.txt").read_text().splitlines() if line.strip()]
    names += sorted(p.name for p in (args.data / "jsons").glob("*.json") if p.name not in set(names))
    names = names[:args.forms]
    cut = round(len(names) * 0.8)
    if args.only_scaling:
        report_scaling(ocr_scaling(args.data, names[:args.scaling_forms], args.cpus))
        return
    if args.ablation:
        from visual_ner_ablation import ablation  # beside this script

        ablation(args.data, names, cut, args.seeds)
        return

    with tempfile.TemporaryDirectory(prefix="annoray-vner-bench-") as tmp:
        settings, key = platform(Path(tmp) / "home")
        engine = init_home(settings)
        ray.init(address="local", num_cpus=16, _memory=64 * GIB, include_dashboard=False, log_to_driver=False,
                 namespace=settings.scheduler.namespace)
        start_scheduler(settings)
        token = settings.admin_token_path.read_text().strip()
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
            fields = {"id": "bench", "issuer": "benchmark", "licensee": "benchmark", "scopes": ["ocr:training", "ocr:inference"],
                      "seats": 4, "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
            client.post("/api/licenses", json=sign_license(fields, key)).raise_for_status()
            figures, jobs = {}, {}
            for words in ("gold", "ocr"):
                began = time.perf_counter()
                pid, pages = project(client, args.data, names, cut, gold=words == "gold")
                ocr_wall = time.perf_counter() - began
                for name, family in ENGINES.items():
                    jobs[(words, name)] = (pid, train(client, pid, family, args.epochs)["id"])
                if words == "ocr":
                    ocr_pages, ocr_project, ocr_speed = pages, pid, len(pages) / ocr_wall
            for (words, name), (pid, job_id) in jobs.items():
                job = finished(client, job_id)
                figures[(words, name)] = job["metrics"]["micro"]["f1"]
                print(f"{words} words, {name} ({job['engine']}): entity F1 {figures[(words, name)]:.3f}", flush=True)
                if (words, name) == ("ocr", "layout"):
                    model = job["model"]
            hits = sum(matched([(w[0], tuple(w[1:5])) for w in p["gold"]], [(w["text"], tuple(w["box"])) for w in p["ocr"]["words"]])
                       for p in ocr_pages)
            recall = hits / sum(len(p["gold"]) for p in ocr_pages)
            one_core = len(ocr_pages) / sum(p["ocr"]["seconds"] or 0 for p in ocr_pages)
            every_task = [t["id"] for t in client.get(f"/api/projects/{ocr_project}/tasks", params={"page_size": 500}).json()["items"]]
            serve_speed = {replicas: preannotate(client, ocr_project, model, every_task, replicas) for replicas in args.replicas}
            by_region = region_f1(client, ocr_project, ocr_pages)
        ray.shutdown()

    print(f"\n{len(names)} EC-FUNSD forms through annoray: {cut} train, {len(names) - cut} test (task tags); "
          f"{args.epochs or 'the default'} epochs; "
          f"labels {', '.join(LABELS)}")
    print(f"{'words':<6} {'layout F1':>10} {'text-only F1':>13} {'layout - text':>14}")
    for words in ("gold", "ocr"):
        layout, text = figures[(words, "layout")], figures[(words, "text only")]
        print(f"{words:<6} {layout:>10.3f} {text:>13.3f} {layout - text:>+14.3f}")
    print(f"OCR (Tesseract, one core per page): word recall {recall:.3f}; {ocr_speed:.2f} pages/s on this machine, "
          f"upload to the last page's words ({os.cpu_count()} cores); {one_core:.2f} pages/s per task by the pages' own timings")
    print(f"the test forms pre-annotated by the OCR layout model, each region counted as the form's words it covers "
          f"(as a user sees it): entity F1 {by_region[0]:.3f} (P {by_region[1]:.3f}, R {by_region[2]:.3f})")
    least = min(serve_speed)
    for replicas, speed in serve_speed.items():
        print(f"pre-annotation (a server of {replicas} replica{'s' if replicas > 1 else ''}, {len(every_task)} OCR'd pages, "
              f"three jobs, first request to last prediction): {speed:.2f} pages/s, {speed / serve_speed[least]:.2f}x {least} replica")
    if args.cpus:
        report_scaling(ocr_scaling(args.data, names[:args.scaling_forms], args.cpus))


def report_scaling(rates: dict[int, float]) -> None:
    least = min(rates)
    for count, rate in rates.items():
        print(f"OCR on a Ray of {count} CPU{'s' if count > 1 else ''}: {rate:.2f} pages/s, {rate / rates[least]:.2f}x {least} CPU")


if __name__ == "__main__":
    main()
