"""The dashboard in a real browser (Debian's Chromium, driven by Playwright): sign in with a token, see only one's
projects, train from the Train button and see the jobs at once, download a log, sign out; on Ray, the whole loop of
the seeds on pages (a broken config's errors at their lines, import, train and watch, the model's confusion matrix,
compare, deploy, pre-annotate, delete the server); and the role, cookie and CSRF rules checked from outside."""

import json
import re
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import Api, csrf_of, signed_in, wait_for, wait_for_trainings

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: sh scripts/system-packages.sh --tests")


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def screen(browser, tmp_path: Path):
    """A page 1280 pixels wide whose last state is saved as ``last.png`` in the test's folder."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)


def sign_in(page, url: str, client: httpx.Client) -> None:
    page.goto(f"{url}/ui/sign-in")
    page.fill("input[name=token]", client.headers["Authorization"].removeprefix("Bearer "))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/$"))


def test_sign_in_see_ones_projects_train_with_feedback_download_the_log_and_sign_out(api: Api, clinic, screen) -> None:
    pid, owner = clinic
    api.admin.post("/api/projects", json={"name": "not hers", "labeling_config": owner.get(f"/api/projects/{pid}").json()["labeling_config"]})
    page = screen
    page.goto(f"{api.url}/ui/")
    assert page.url.endswith("/ui/sign-in"), "a visitor who is not signed in is sent to sign in"
    page.fill("input[name=token]", "ar_not_a_token")
    page.click("button[type=submit]")
    assert "that token is not one annoray knows" in page.inner_text("[role=alert]")

    page.fill("input[name=token]", "")
    page.keyboard.type(owner.headers["Authorization"].removeprefix("Bearer "))  # the field has the focus: keyboard only
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/$"))
    rows = page.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "clinic" in rows[0] and "owner" in rows[0] and "not hers" not in " ".join(rows), rows
    cookie = next(c for c in page.context.cookies() if c["name"] == "annoray_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.click("text=clinic")
    page.click("nav.tabs >> text=Train")
    page.fill("input[name=epochs]", "3")
    page.click("form.train button[type=submit]")
    notice = page.locator("#train-result [role=status]")
    notice.wait_for(timeout=20_000)
    assert notice.inner_text().startswith("queued: training"), notice.inner_text()
    jobs = owner.get(f"/api/projects/{pid}/trainings").json()
    assert len(jobs) == 3 and all(j["params"]["epochs"] == 3 for j in jobs), "the button sent the API's own request"
    assert page.locator("#train-kinds input[disabled]").count() == 3, "a kind that is training cannot be trained again"
    assert "every kind of this project is training now" in page.inner_text("#train-kinds .why-disabled")
    assert page.locator("#train-kinds button[type=submit]").is_disabled()

    page.goto(f"{api.url}/ui/trainings/{jobs[0]['id']}")
    waits = page.inner_text("table.waits")
    assert "cpus" in waits and "the scheduler is not running" in waits, "a queued training says what it waits for"
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/ui/projects/{pid}", f"/ui/projects/{pid}/train", f"/ui/projects/{pid}/history"):
        page.goto(api.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{path} is readable 390 pixels wide"
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{api.url}/ui/projects/{pid}/history")
    assert page.locator("#trainings tr[data-status=queued]").count() == 3
    with page.expect_download() as download:
        page.locator(f"#trainings tr[data-job='{jobs[0]['id']}'] a[download]").click()
    assert "requested by olivia" in Path(download.value.path()).read_text()

    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/ui/sign-in$"))
    page.goto(f"{api.url}/ui/projects/{pid}")
    assert page.url.endswith("/ui/sign-in"), "the session ended"


def test_pages_keep_the_apis_rules_and_forms_need_their_csrf_token(api: Api, clinic, screen) -> None:
    pid, owner = clinic
    annotator = api.user("arno")
    assert owner.post(f"/api/projects/{pid}/members", json={"username": "arno", "role": "annotator"}).status_code == 201
    sign_in(screen, api.url, annotator)
    screen.goto(f"{api.url}/ui/projects/{pid}")
    assert screen.locator("nav.tabs >> text=Train").count() == 0, "an annotator sees no Train button"
    screen.goto(f"{api.url}/ui/projects/{pid}/train")
    assert screen.locator("button[type=submit]:has-text('Train')").count() == 0
    csrf = screen.locator("input[name=csrf]").first.get_attribute("value")
    refused = screen.request.post(f"{api.url}/ui/projects/{pid}/trainings", form={"csrf": csrf, "kinds": "ner"})
    assert refused.status == 403 and "[E402]" in refused.text()
    screen.goto(f"{api.url}/ui/clusters")
    assert "[E402]" in screen.inner_text("[role=alert]"), "the Clusters page is for admins and owners"
    with httpx.Client(base_url=api.url, follow_redirects=False) as web:
        web.get("/ui/sign-in")
        stale = web.post("/ui/sign-in", data={"token": owner.headers["Authorization"][7:], "csrf": "forged"})
        assert "this form is stale" in stale.text and "annoray_session" not in stale.cookies
        csrf = csrf_of(stale.text)  # the form shown again, with a fresh token
        signed = web.post("/ui/sign-in", data={"token": owner.headers["Authorization"][7:], "csrf": csrf})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/"
        page = web.get(f"/ui/projects/{pid}")
        session_csrf = csrf_of(page.text)
        before = owner.get(f"/api/projects/{pid}/trainings").json()
        for bad in ("forged", "ü" * 43, ""):
            forged = web.post(f"/ui/projects/{pid}/trainings", data={"csrf": bad, "epochs": "2"})
            assert forged.status_code == 403 and "this form is stale" in forged.text, bad
        assert owner.get(f"/api/projects/{pid}/trainings").json() == before, "a forged form changes nothing"
        other = api.admin.post("/api/projects", json={"name": "private", "labeling_config": page.text and
                                                      owner.get(f"/api/projects/{pid}").json()["labeling_config"]}).json()["id"]
        assert web.get(f"/ui/projects/{other}").status_code == 403, "a page never shows what its user may not see"
        assert web.post(f"/ui/projects/{other}/trainings", data={"csrf": session_csrf}).status_code == 403
        assert web.get("/ui/projects/999999").status_code == 404
        assert web.post("/ui/sign-out", data={"csrf": session_csrf}).status_code == 303
        assert web.get("/ui/").headers["location"] == "/ui/sign-in"


def test_an_admin_disables_a_user_revokes_a_token_and_reads_the_audit_log_and_a_user_replaces_their_token(
        api: Api, screen) -> None:
    olivia = api.user("olivia")
    named = olivia.post("/api/tokens", json={"name": "laptop"}).json()
    sign_in(screen, api.url, olivia)
    screen.click("nav >> text=Account")
    screen.click("button:has-text('Replace my token')")
    token = screen.inner_text("code.token")
    assert olivia.get("/api/users/me").status_code == 401, "the old token stopped"
    with api.client(token) as renewed:
        assert renewed.get("/api/users/me").json()["username"] == "olivia"
    assert screen.locator("nav >> text=Users").count() == 0, "the admin page is for admins"
    screen.goto(f"{api.url}/ui/admin")
    assert "[E403]" in screen.content()

    sign_in(screen, api.url, api.admin)
    screen.click("nav >> text=Users")
    screen.click(f"[data-token='{named['id']}'] >> button:has-text('Revoke')")
    assert f"token {named['id']} revoked" in screen.inner_text("[role=status]")
    screen.click("[data-user=olivia] >> button:has-text('Disable')")
    assert "disabled" in screen.inner_text("[data-user=olivia]")
    with api.client(token) as renewed:
        assert renewed.get("/api/users/me").status_code == 401, "disabled: no token works"
    assert "POST /ui/account/token" in screen.inner_text("table.audit"), "the audit log shows the replacement"
    screen.click("[data-user=olivia] >> button:has-text('Enable')")
    assert "active" in screen.inner_text("[data-user=olivia]")


SAMPLE = 300  # annotated clinical sentences: every label of each kind (the quickstart trains on all 1,490)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_seeds_loop_on_pages_config_import_train_with_the_defaults_watch_compare_deploy_preannotate_delete(
        training_api: Api, clinical_config: str, clinical_tasks: list, screen, tmp_path: Path) -> None:
    """Train is pressed without touching a parameter: the mixed project's three models, in one request with each
    engine's defaults, each beat the guess that needs no model on the same split, then follow, log and serve like any
    other. (Visual NER's defaults are proven the same way in its own loop, `scheduler/test_visual_ner_on_ray.py`.)"""
    api, page = training_api, screen
    owner = api.user("olivia")
    engines = {e["name"]: e["defaults"] for e in owner.get("/api/engines").json()}
    epochs = engines["spacy.ner.v1"]["epochs"]
    sign_in(page, api.url, owner)

    broken = clinical_config.replace('toName="text"', 'toName="txt"', 1)
    page.fill("input[name=name]", "Clinical notes")
    page.fill("textarea[name=labeling_config]", broken)
    page.click("form[action='/ui/projects'] button[type=submit]")
    errors = page.locator(".line-error").all_inner_texts()
    line = 1 + next(i for i, text in enumerate(broken.splitlines()) if 'toName="txt"' in text)
    assert errors and all(e.startswith(f"line {line}: [E108] toName 'txt'") for e in errors), errors
    assert page.locator(f"ol.config-lines li[data-line='{line}'] .line-error").count() == len(errors)
    page.fill("textarea[name=labeling_config]", clinical_config)
    page.click("form[action='/ui/projects'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/projects/\d+$"))
    pid = int(page.url.rsplit("/", 1)[1])

    tasks = clinical_tasks[:SAMPLE] + [{"data": t["data"]} for t in clinical_tasks[1490:1500]]  # ten without a completion
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    page.set_input_files("form[action$='/import'] input[type=file]", str(tmp_path / "tasks.json"))
    page.click("form[action$='/import'] button[type=submit]")
    assert page.inner_text("[role=status]") == f"{SAMPLE + 10} tasks imported"

    def train(kinds: list[str], epochs: int | None = None) -> list[int]:
        page.goto(f"{api.url}/ui/projects/{pid}/train")
        for box in page.locator("#train-kinds input[name=kinds]").all():
            box.set_checked(box.get_attribute("value") in kinds)
        if epochs is not None:
            page.fill("input[name=epochs]", str(epochs))
            page.fill("input[name=learning_rate]", "0.005")
        page.click("form.train button[type=submit]")
        page.locator("#train-result [role=status]").wait_for(timeout=30_000)
        return [int(a.get_attribute("href").rsplit("/", 1)[1]) for a in page.locator("#train-result [role=status] a").all()]

    ids = train(["ner", "assertion", "classification"])  # no parameter touched
    assert len(ids) == 3
    ner_id = ids[0]
    followed: list[str] = []
    follower = threading.Thread(target=lambda: followed.append(owner.get(f"/api/trainings/{ner_id}/log", params={"follow": "true"}, timeout=900).text))
    follower.start()
    page.goto(f"{api.url}/ui/trainings/{ner_id}")
    page.evaluate("window.notReloaded = true")
    # Polled from here: the page's content security policy forbids the eval that wait_for_function's polling uses.
    deadline = time.monotonic() + 600
    while not page.evaluate("document.querySelector('#progress').value >= 50 || "
                            "document.querySelector('#status').dataset.status == 'succeeded'"):
        assert time.monotonic() < deadline, "the progress bar never passed 50%"
        page.wait_for_timeout(200)
    page.wait_for_timeout(500)  # the chart of the epochs so far
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)
    page.wait_for_selector("#status[data-status='succeeded']", state="attached", timeout=600_000)
    assert page.evaluate("window.notReloaded"), "the page followed the run without a reload"
    assert page.locator("#progress").evaluate("p => p.value") == 100
    assert f"epoch {epochs}/{epochs}" in page.inner_text("#log") and "final metrics" in page.inner_text("#log")
    page.locator("table.benchmark").wait_for()
    assert page.locator("table.epochs tbody tr").count() == epochs and page.locator(".chart polyline.loss").count() == 1
    api_job = owner.get(f"/api/trainings/{ner_id}").json()
    assert page.inner_text("table.benchmark tr[data-label='Condition'] td:nth-child(4)") == f"{api_job['metrics']['per_label']['Condition']['f1']:.4f}"

    final, seen = wait_for_trainings(owner, ids, timeout=800)
    follower.join(timeout=60)
    assert [j["kind"] for j in final] == ["ner", "assertion", "classification"]
    assert any("[E302] label 'Not particular'" in w for w in final[2]["warnings"])
    for job, history in zip(final, seen, strict=True):
        assert job["status"] == "succeeded", job
        assert job["params"] == engines[job["engine"]], "a request that gives no parameter trains with the engine's defaults"
        assert job["metrics"]["micro"]["f1"] > job["metrics"]["reference"]["micro"]["f1"], ("beats a guess with no model", job)
        seen_epochs = [s["progress"]["epoch"] for s in history]
        assert seen_epochs == sorted(seen_epochs) and seen_epochs[-1] == epochs and job["progress"]["percent"] == 100.0
        model = owner.get(f"/api/models/{job['model']}").json()
        assert model["training_job_id"] == job["id"] and model["metrics"] == job["metrics"]
        assert set(model["metrics"]) >= {"micro", "macro", "per_label"}
    ner, assertion, first = final
    assert [j["model"] for j in final] == ["ner_clinical_notes_annotation_manual", "assertion_clinical_notes_annotation_manual",
                                           "classification_temporality_annotation_manual"]
    log = owner.get(f"/api/trainings/{ner['id']}/log").text
    defaults = engines["spacy.ner.v1"]
    for expected in (f"parameters: epochs={epochs}, learning_rate={defaults['learning_rate']}", "versions: annoray", "spacy 3.8",
                     f"data: {SAMPLE} tasks", "examples per label: Condition=", f"epoch 1/{epochs}",
                     "final metrics on the held-out split", "model 'ner_clinical_notes_annotation_manual' saved"):
        assert expected in log, expected
    assert followed and followed[0] == log
    twin = owner.get(f"/api/trainings/{first['id']}/log", params={"format": "json"}).json()
    assert [e["epoch"] for e in twin["epochs"]] == list(range(1, epochs + 1)) and twin["metrics"]["metrics"] == first["metrics"]
    assert twin["request"]["params"]["epochs"] == epochs and twin["start"]["versions"]["ray"]
    assert twin["data"]["label_counts"]["Recent"] > 0
    history = owner.get(f"/api/projects/{pid}/trainings").json()
    assert [(h["id"], h["source"], h["status"]) for h in history] == [(j["id"], "manual", "succeeded") for j in reversed(final)]
    assert all(h["data"]["tasks_selected"] == SAMPLE and h["log"] == f"/api/trainings/{h['id']}/log" for h in history)

    second, = train(["classification"], 2)
    (done, *_), _ = wait_for_trainings(owner, [second])
    model = owner.get(f"/api/models/{done['model']}").json()
    page.goto(f"{api.url}/ui/models")
    page.click(f"tr[data-model='{done['model']}'] a")
    matrix = model["metrics"]["confusion_matrix"]
    assert matrix["labels"] == ["Recent", "Historical", "Not particular"]
    assert sum(map(sum, matrix["matrix"])) == done["data"]["test_examples"]
    for gold, row in zip(matrix["labels"], matrix["matrix"], strict=True):
        for predicted, n in zip(matrix["labels"], row, strict=True):
            assert page.inner_text(f"table.confusion td[data-gold='{gold}'][data-predicted='{predicted}']") == str(n)
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)

    page.goto(f"{api.url}/ui/projects/{pid}/history")
    page.check(f"input[name=job][value='{first['id']}']")
    page.check(f"input[name=job][value='{second}']")
    page.click("text=Compare the chosen runs")
    assert page.locator("tr.differs[data-param='epochs']").count() == 1 and page.locator("tr.differs[data-param='dropout']").count() == 0
    runs = {j: owner.get(f"/api/trainings/{j}").json()["metrics"]["per_label"] for j in (first["id"], second)}
    for j, per_label in runs.items():
        assert page.inner_text(f"tr[data-label='Recent'] td.f1[data-job='{j}']") == f"{per_label['Recent']['f1']:.4f}"

    # the three models of the defaults serve together, deployed from the page
    page.goto(f"{api.url}/ui/projects/{pid}/preannotate")
    for job in final:
        page.check(f"input[name=models][value='{job['model']}']")
    page.click("form[action$='/servers'] button[type=submit]")
    sid = int(re.search(r"deployed=(\d+)", page.url)[1])
    state = wait_for(api, f"/api/servers/{sid}", lambda s: s["status"] == "running", timeout=300)
    served = {m["name"]: m["labels"] for m in state["models"]}
    assert set(served) == {j["model"] for j in final} and served[first["model"]] == ["Recent", "Historical", "Not particular"]
    page.reload()
    assert "Condition" in page.inner_text(f"tr[data-server='{sid}'] ul.models"), "the labels a server predicts, before it runs"
    page.check(f"input[name=server_id][value='{sid}']")
    page.click("text=Pre-annotate the tasks with no completion")
    page.wait_for_selector("#preannotation .status[data-status=succeeded]", timeout=300_000)
    assert page.locator("#preannotation-progress").evaluate("p => p.value") == 1
    page.click("text=See the predictions in the task list")
    assert page.locator("article.task mark.chunk").count() > 0, "predicted chunks are highlighted"
    assert page.locator("article.task").first.get_attribute("data-task") is not None

    unannotated = [t["id"] for t in owner.get(f"/api/projects/{pid}/tasks", params={"completed": "no", "page_size": 50}).json()["items"]]
    predictions = [p for t in unannotated for p in owner.get(f"/api/projects/{pid}/tasks/{t}/predictions").json()]
    assert len(unannotated) == len(predictions) == 10
    spans = [r for p in predictions for r in p["result"] if r["type"] == "labels"]
    assert spans and all(0 <= r["score"] <= 1 and r["value"]["text"] for r in spans)
    assert any(" " in r["value"]["text"] for r in spans), "multi-token chunks come back as one region"
    assert all(r["value"]["choices"][0] in ("Recent", "Historical", "Not particular") for p in predictions
               for r in p["result"] if r["type"] == "choices")
    created = owner.post(f"/api/projects/{pid}/tasks/{unannotated[0]}/completions/from-prediction/{predictions[0]['id']}")
    assert created.status_code == 201, created.text

    page.goto(f"{api.url}/ui/clusters")
    assert page.locator(f"table.servers tr[data-server='{sid}']").count() == 1
    assert page.inner_text("table.nodes tbody tr td:nth-child(2)").endswith("/ 16"), "free and total CPUs of the node"
    page.screenshot(path=str(tmp_path / "clusters.png"), full_page=True)
    page.click(f"table.servers tr[data-server='{sid}'] button")
    assert page.inner_text("[role=status]") == f"server {sid} deleted"
    assert owner.get(f"/api/servers/{sid}").status_code == 404


def test_a_visual_ner_prediction_is_drawn_over_its_page(api: Api) -> None:
    from ..conftest import sample_forms

    pid, tasks, items = sample_forms(api, 2)
    predicted = [{"data": t["data"], "predictions": [{"result": t["annotations"][0]["result"], "model_version": "m"}]} for t in tasks]
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=predicted).status_code == 201
    web = signed_in(api, api.admin)
    page = web.get(f"/ui/projects/{pid}/tasks", params={"completed": "no"}).text
    images = re.findall(r'<img src="(/ui/files/\d+/pages/1)"', page)
    assert len(images) == 2
    boxes = re.findall(r'class="box" data-label="([^"]+)" style="left:([\d.]+)%;top:([\d.]+)%', page)
    expected = [(r["value"]["labels"][0], r["value"]["x"], r["value"]["y"]) for t in tasks for r in t["annotations"][0]["result"]
                if r["type"] == "labels"]
    assert [(label, float(x), float(y)) for label, x, y in boxes] == expected
    image = web.get(images[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert httpx.get(api.url + images[0]).status_code == 303, "a page image needs a session"

    csrf = csrf_of(web.get(f"/ui/projects/{pid}").text)
    uploaded = web.post(f"/ui/projects/{pid}/files", data={"csrf": csrf}, files=[("file", ("new.png", image.content, "image/png"))])
    assert uploaded.status_code == 303 and "1+pages+uploaded" in uploaded.headers["location"]
    assert len(api.admin.get(f"/api/projects/{pid}/files").json()) == 3
    refused = web.post(f"/ui/projects/{pid}/files", data={"csrf": csrf}, files=[("file", ("notes.txt", b"not an image", "text/plain"))])
    assert refused.status_code == 422 and "[E9" in refused.text, refused.text[:300]
    assert len(api.admin.get(f"/api/projects/{pid}/files").json()) == 3, "a refused upload stores nothing"
    web.close()
