"""The client commands against a live API over real HTTP: tables, --json, refusals, and jobs followed on Ray."""

import json
import time
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from annoray.api.cli import app
from annoray.api.server import free_port
from annoray.platform.store.tables import CatalogModel

from ..conftest import GERMAN, NAMES, NER_CONFIG, SECRET, Api, clinic, clinical_sentences, license_document, span_task

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's consoles read COLUMNS once, when their module is first imported (by whichever test came first): the
    commands here print on 200 columns whatever ran before them."""
    from annoray.api.cli import render

    for console in (render.console, render.progress_console):
        monkeypatch.setattr(console, "width", 200)


LABELS = {"ner": ["Drug"], "assertion": ["present", "absent"], "classification": ["cardiology", "neurology"]}
METRICS = {
    "ner": {},
    "assertion": {"micro": {"precision": 0.8, "recall": 0.7, "f1": 0.747}, "macro": {"precision": 0.6, "recall": 0.5, "f1": 0.545},
                  "per_label": {"present": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 12},
                                "absent": {"precision": 0.3, "recall": 0.2, "f1": 0.24, "support": 3}}},
    "classification": {"micro": {"precision": 0.8, "recall": 0.8, "f1": 0.8}, "macro": {"precision": 0.8, "recall": 0.79, "f1": 0.795},
                       "per_label": {"cardiology": {"precision": 0.778, "recall": 0.875, "f1": 0.824, "support": 8},
                                     "neurology": {"precision": 0.833, "recall": 0.714, "f1": 0.769, "support": 7}},
                       "confusion_matrix": {"labels": ["cardiology", "neurology"], "matrix": [[7, 1], [2, 5]]}},
}


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def annoray(api: Api, *args: str, as_user: httpx.Client | None = None) -> Result:
    """Run a command in-process against the live API, as the admin unless another user's client is given."""
    token = token_of(as_user or api.admin)
    return runner.invoke(app, [*args, "--url", api.url, "--token", token], env={"COLUMNS": "200"})


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.stdout


def refused(result: Result) -> str:
    """A refusal: exit code 1, nothing on stdout, one line on stderr and no traceback."""
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def without_ray_noise(output: str) -> str:
    """The command's output without what Ray's driver printed into the same captured stdout meanwhile."""
    return "".join(line for line in output.splitlines(keepends=True) if "(raylet)" not in line)


def catalog(api: Api) -> None:
    """The three models the clinical config names, as catalog rows (no files: nothing here loads them)."""
    with Session(api.engine) as session:
        for kind, name in NAMES.items():
            session.add(CatalogModel(name=name, kind=kind, labels=LABELS[kind], language="en", engine=f"spacy.{kind}.v1",
                                     source="manual", uri=f"/nowhere/{name}", metrics=METRICS[kind]))
        session.commit()


@pytest.fixture
def cardio(api: Api) -> int:
    """A project whose config names the three catalog models, with 24 tasks, two of them annotated."""
    catalog(api)
    return clinic(api, "cardio")


def test_the_console_script_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "annoray.api.cli", "--help"], capture_output=True, text=True,
                          env=os.environ | {"COLUMNS": "200"}, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("up", "quickstart", "convert-conll", "projects", "train", "jobs", "models", "servers", "preannotate",
                    "users", "tasks", "files", "training-data", "training-configs", "engines", "export", "logs",
                    "licenses", "cluster", "queue", "active-learning", "tokens", "audit"):
        assert f"│ {command} " in done.stdout, command


def test_projects_lists_each_users_projects_with_role_kinds_and_shows_one_with_its_models(api: Api, cardio: int) -> None:
    ann = api.user("ann")
    assert api.admin.post(f"/api/projects/{cardio}/members", json={"username": "ann", "role": "annotator"}).status_code == 201
    api.admin.post("/api/projects", json={"name": "admin only", "labeling_config": NER_CONFIG.format(label="Befund")})

    mine = json.loads(ok(annoray(api, "projects", "--json", as_user=ann)))
    assert [(p["id"], p["name"], p["role"], p["config_version"]) for p in mine] == [(cardio, "cardio", "annotator", 1)]
    rows = [line for line in ok(annoray(api, "projects")).splitlines() if "cardio" in line or "admin only" in line]
    assert len(rows) == 2
    assert "owner" in rows[0] and "ner, assertion, classification" in rows[0] and rows[1].split("│")[4].strip() == "ner"

    shown = ok(annoray(api, "projects", str(cardio)))
    assert f"project cardio (id {cardio}): role owner, language en" in shown
    assert "Drug, Dose" in shown and "present, absent" in shown and "cardiology, neurology" in shown
    assert "models the config names: ner_clinic, assertion_clinic, classification_clinic" in shown


def test_a_bad_token_an_unknown_project_and_an_unreachable_api_print_one_line_and_exit_1(api: Api) -> None:
    bad = runner.invoke(app, ["projects", "--url", api.url, "--token", "nope"])
    assert refused(bad).startswith("error 401: [E401] missing or invalid bearer token")
    assert refused(annoray(api, "projects", "999")) == "error 404: [E404] project 999 not found\n"
    assert refused(annoray(api, "jobs", "--job", "999")) == "error 404: [E404] training 999 not found\n"
    url = f"http://127.0.0.1:{free_port()}"
    down = runner.invoke(app, ["models", "--url", url, "--token", "t"], env={"ANNORAY_URL": "http://elsewhere"})
    assert refused(down).startswith(f"error: cannot reach the annoray API at {url}: ")


def test_the_url_and_token_come_from_the_environment(api: Api, cardio: int) -> None:
    env = {"ANNORAY_URL": api.url, "ANNORAY_TOKEN": token_of(api.admin), "COLUMNS": "200"}
    listed = runner.invoke(app, ["projects", "--json"], env=env)
    assert listed.exit_code == 0 and [p["id"] for p in json.loads(listed.stdout)] == [cardio]


def test_users_projects_members_tasks_training_data_export_and_logs_from_the_cli_alone(api: Api, tmp_path: Path) -> None:
    created = json.loads(ok(annoray(api, "users", "create", "olivia", "--json")))
    assert created["username"] == "olivia" and created["token"].startswith("ar_")
    olivia = api.client(created["token"])
    config = tmp_path / "config.xml"
    config.write_text("<View><Labels name='label' toName='text'><Label value='Drug'/></Labels></View>")
    assert refused(annoray(api, "projects", "create", "drugs", "--config", str(config), as_user=olivia)).startswith("error 422: [E1")
    assert api.admin.get("/api/projects").json() == [], "a refused config creates nothing"
    config.write_text(NER_CONFIG.format(label="Drug"))
    shown = ok(annoray(api, "projects", "create", "drugs", "--config", str(config), as_user=olivia))
    assert "project drugs (id " in shown and "role owner" in shown
    pid = olivia.get("/api/projects").json()[0]["id"]
    api.user("ann")
    assert "ann is now reviewer of project" in ok(annoray(api, "projects", "members", "add", str(pid), "ann", "--role", "reviewer",
                                                          as_user=olivia))
    members = json.loads(ok(annoray(api, "projects", "members", "list", str(pid), "--json", as_user=olivia)))
    assert [(m["username"], m["role"]) for m in members] == [("olivia", "owner"), ("ann", "reviewer")]
    file = tmp_path / "tasks.json"
    file.write_text(json.dumps([span_task(f"The patient takes {d} daily.", d, "Drug") for d in ("aspirin", "heparin", "insulin")]))
    imported = json.loads(ok(annoray(api, "tasks", "import", str(pid), str(file), "--json", as_user=olivia)))
    assert imported["imported"] == 3 and len(imported["task_ids"]) == 3
    listed = ok(annoray(api, "tasks", "list", str(pid), as_user=olivia))
    assert f"tasks of project {pid} (page 1, 3 in all)" in listed and "The patient takes heparin daily." in listed
    data = json.loads(ok(annoray(api, "training-data", str(pid), "--json", as_user=olivia)))
    assert data["tasks_selected"] == 3 and data["kinds"]["ner"]["label_counts"] == {"Drug": 3}
    out = tmp_path / "drugs.conll"
    assert "wrote" in ok(annoray(api, "export", str(pid), "--format", "conll", "-o", str(out), as_user=olivia))
    assert "heparin -X- -X- B-Drug" in out.read_text()
    assert refused(annoray(api, "tasks", "import", str(pid), str(file), as_user=api.user("nobody"))).startswith("error 403: ")

    job = olivia.post(f"/api/projects/{pid}/trainings", json={}).json()["jobs"][0]["id"]  # no scheduler: it stays queued
    env = {"ANNORAY_DATABASE_URL": api.settings.database_url or ""}
    log = runner.invoke(app, ["logs", str(job), "--home", str(api.settings.home)], env=env)
    assert log.exit_code == 0 and "requested" in log.stdout.lower(), log.output
    missing = runner.invoke(app, ["logs", "999", "--home", str(api.settings.home)], env=env)
    assert missing.exit_code == 1 and "training 999 not found" in missing.stderr


def test_documents_are_uploaded_with_a_task_per_page_and_listed_with_their_ocr(api: Api, tmp_path: Path) -> None:
    from importlib import resources

    from ..conftest import VISUAL_CONFIG

    (tmp_path / "forms.xml").write_text(VISUAL_CONFIG)
    pid = json.loads(ok(annoray(api, "projects", "create", "forms", "--config", str(tmp_path / "forms.xml"), "--json")))["id"]
    forms = resources.files("annoray.platform") / "samples" / "forms"
    for name in ("form-001.png", "form-002.png"):
        (tmp_path / name).write_bytes((forms / name).read_bytes())
    out = ok(annoray(api, "files", "upload", str(pid), str(tmp_path / "form-001.png"), str(tmp_path / "form-002.png"), "--tasks"))
    assert "uploaded into project" in out and "form-002.png" in out and "850 x 1100" in out and "queued" in out, out
    assert "2 tasks created, one per page" in out
    listed = json.loads(ok(annoray(api, "files", "list", str(pid), "--json")))
    assert [(f["filename"], f["pages"][0]["ocr"]) for f in listed] == [("form-001.png", "queued"), ("form-002.png", "queued")]
    (tmp_path / "notes.txt").write_text("not a scan")
    refused = annoray(api, "files", "upload", str(pid), str(tmp_path / "notes.txt"))
    assert refused.exit_code == 1 and "[E901] file 'notes.txt' is not an image or a PDF" in refused.output, refused.output
    assert len(json.loads(ok(annoray(api, "files", "list", str(pid), "--json")))) == 2


def test_engines_an_imported_model_and_an_owners_training_config_from_the_cli(api: Api, tmp_path: Path) -> None:
    from ..api.test_model_import import outside_pipeline
    from ..api.test_training_configs import spacy_ner_config
    from ..conftest import NER_CONFIG, span_task

    cardio = api.admin.post("/api/projects", json={"name": "ner", "labeling_config": NER_CONFIG.format(label="Drug")}).json()["id"]
    api.admin.post(f"/api/projects/{cardio}/tasks/import", json=[span_task("Took aspirin daily.", "aspirin", "Drug")] * 4)

    listed = ok(annoray(api, "engines"))
    assert "spacy.visual_ner.v1" in listed and "yes" in listed and "30 epochs, batch 4, lr 0.002" in listed
    out = ok(annoray(api, "models", "disease_outside", "--import", str(outside_pipeline(tmp_path / "outside"))))
    assert "model disease_outside: ner, language en" in out and "from imported" in out and "Disease" in out, out
    (tmp_path / "wide.cfg").write_text(spacy_ner_config().replace("width = 96", "width = 128"))
    out = ok(annoray(api, "training-configs", str(cardio), "--upload", str(tmp_path / "wide.cfg")))
    assert "wide" in out and "training configs of project" in out, out
    (config,) = json.loads(ok(annoray(api, "training-configs", str(cardio), "--json")))
    queued = json.loads(ok(annoray(api, "train", str(cardio), "--kind", "ner", "--config", str(config["id"]), "--json")))
    assert [j["kind"] for j in queued["jobs"]] == ["ner"]
    (tmp_path / "broken.cfg").write_text(spacy_ner_config().replace("width = 96", 'width = "wide"'))
    broken = annoray(api, "training-configs", str(cardio), "--upload", str(tmp_path / "broken.cfg"))
    assert broken.exit_code == 1 and "components.tok2vec.model.embed.width" in broken.output, broken.output
    assert "no training configs" in ok(annoray(api, "training-configs", str(cardio), "--delete", str(config["id"])))


def test_invalid_training_parameters_list_every_field(api: Api, cardio: int) -> None:
    message = refused(annoray(api, "train", str(cardio), "--epochs", "0", "--dropout", "1.5", "--kind", "sentiment"))
    assert message.startswith("error 422: invalid request: ")
    for field in ("body.params.epochs", "body.params.dropout", "body.kinds.0"):
        assert field in message, field


def test_a_label_without_examples_is_named_in_the_refusal(api: Api) -> None:
    config = NER_CONFIG.replace('<Label value="{label}"/>', '<Label value="Drug"/><Label value="Dose"/>')
    pid = api.admin.post("/api/projects", json={"name": "p", "labeling_config": config}).json()["id"]
    api.admin.post(f"/api/projects/{pid}/tasks/import", json=[span_task("Take aspirin daily.", "aspirin", "Drug")])
    message = refused(annoray(api, "train", str(pid)))
    assert message.startswith("error 422: ") and "[E301] label 'Dose' has no training example" in message


def test_train_queues_one_job_per_kind_with_the_options_and_jobs_lists_the_history(
        api: Api, clinical_config: str, clinical_tasks: list) -> None:
    pid = api.admin.post("/api/projects", json={"name": "notes", "labeling_config": clinical_config}).json()["id"]
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=clinical_tasks[:60]).status_code == 201
    queued = json.loads(ok(annoray(api, "train", str(pid), "--kind", "ner", "--epochs", "3", "--learning-rate", "0.01",
                                   "--batch-size", "4", "--validation-split", "0.25", "--deploy", "--json")))
    (job,) = queued["jobs"]
    assert (job["kind"], job["status"]) == ("ner", "queued")
    state = api.admin.get(f"/api/trainings/{job['id']}").json()
    assert state["params"] | {"seed": 0} == {"epochs": 3, "learning_rate": 0.01, "decay": 0.0, "dropout": 0.1, "batch_size": 4,
                                            "validation_split": 0.25, "seed": 0} and state["deploy"] is True

    printed = ok(annoray(api, "train", str(pid), "--kind", "ner", "--kind", "assertion", "--epochs", "2"))
    assert "queued trainings" in printed and "warning [E302] label 'Absent' has only 8 training examples" in printed
    rows = [line for line in printed.splitlines() if "queued" in line and "│" in line]
    assert [row.split("│")[2].strip() for row in rows] == ["ner", "assertion"]

    history = json.loads(ok(annoray(api, "jobs", str(pid), "--json")))
    assert [(h["kind"], h["progress"]["epochs"]) for h in history] == [("assertion", 2), ("ner", 2), ("ner", 3)]
    table = ok(annoray(api, "jobs", str(pid)))
    assert f"trainings of project {pid}" in table
    assert [line.split("│")[1].strip() for line in table.splitlines() if "manual" in line] == [str(h["id"]) for h in history]
    assert "0/3" in table and "0/2" in table
    usage = annoray(api, "jobs")
    assert usage.exit_code == 2 and "give a PROJECT_ID, or --job JOB_ID" in usage.output
    cancelled = json.loads(ok(annoray(api, "jobs", "--job", str(job["id"]), "--cancel", "--json")))
    assert (cancelled["status"], cancelled["error"]) == ("cancelled", "[E611] cancelled by admin")


def test_active_learning_is_shown_changed_keeping_what_is_left_out_and_refused_whole(api: Api, cardio: int) -> None:
    assert "active learning off: every 50 newly eligible completions, deploy off, gate on (micro.f1)" in ok(annoray(api, "active-learning", str(cardio)))
    changed = json.loads(ok(annoray(api, "active-learning", str(cardio), "--enable", "--every", "10", "--deploy", "--epochs", "3", "--json")))
    assert (changed["enabled"], changed["every"], changed["deploy"], changed["gate"], changed["params"]["epochs"]) == (True, 10, True, True, 3)
    again = json.loads(ok(annoray(api, "active-learning", str(cardio), "--no-gate", "--json")))
    assert (again["enabled"], again["every"], again["deploy"], again["gate"], again["params"]["epochs"]) == (True, 10, True, False, 3)
    assert "E614" in refused(annoray(api, "active-learning", str(cardio), "--metric", "f2"))
    assert api.admin.get(f"/api/projects/{cardio}/active-learning").json()["metric"] == "micro.f1"


def test_models_lists_the_catalog_and_shows_per_label_metrics(api: Api) -> None:
    catalog(api)
    listed = json.loads(ok(annoray(api, "models", "--json")))
    assert sorted(m["name"] for m in listed) == sorted(NAMES.values())
    assert [m["name"] for m in json.loads(ok(annoray(api, "models", "--kind", "assertion", "--json")))] == ["assertion_clinic"]
    table = ok(annoray(api, "models"))
    (row,) = [line for line in table.splitlines() if "assertion_clinic" in line]
    assert "present, absent" in row and "manual" in row and "0.747" in row

    shown = ok(annoray(api, "models", "classification_clinic"))
    assert "model classification_clinic: classification, language en, engine spacy.classification.v1" in shown
    cardiology = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.splitlines() if line.startswith("│ cardiology")]
    assert cardiology == [["cardiology", "0.778", "0.875", "0.824", "8"], ["cardiology", "7", "1"]], "metrics, then the confusion matrix"
    assert "micro avg" in shown and "macro avg" in shown and "confusion matrix" in shown
    assert refused(annoray(api, "models", "nope")) == "error 404: [E404] model nope not found\n"


def test_licenses_install_list_and_delete_never_showing_secrets(api: Api, tmp_path: Path) -> None:
    document = tmp_path / "license.json"
    document.write_text(json.dumps(license_document(["healthcare:training", "healthcare:inference"], seats=2, key="LIC-CLI")))
    installed = ok(annoray(api, "licenses", "--install", str(document)))
    assert "license installed" in installed and "LIC-CLI" in installed and "healthcare:training, healthcare:inference" in installed
    (lic,) = json.loads(ok(annoray(api, "licenses", "--json")))
    assert (lic["key"], lic["seats"], lic["leased"], lic["leases"]) == ("LIC-CLI", 2, 0, [])
    (row,) = [line for line in ok(annoray(api, "licenses")).splitlines() if "LIC-CLI" in line]
    assert "0/2" in row and "annoray-test-issuer" in row

    again = refused(annoray(api, "licenses", "--install", str(document)))
    assert again.startswith("error 409: [E705] license 'LIC-CLI' is already installed")
    forged = license_document(["healthcare:training"], seats=2)
    forged["license"]["seats"] = 200
    document.write_text(json.dumps(forged))
    assert "[E703] the signature does not match" in refused(annoray(api, "licenses", "--install", str(document)))
    document.write_text("not json")
    assert annoray(api, "licenses", "--install", str(document)).exit_code == 2
    assert refused(annoray(api, "licenses", as_user=api.user("ann"))).startswith("error 403: [E403] only an admin may")

    assert f"license {lic['id']} deleted" in ok(annoray(api, "licenses", "--delete", str(lic["id"])))
    assert json.loads(ok(annoray(api, "licenses", "--json"))) == []
    outputs = [r.output for r in (annoray(api, "licenses", "--json"), annoray(api, "licenses"))]
    assert not any(SECRET in output for output in outputs)


def test_tokens_made_listed_used_and_revoked_and_the_audit_log_from_the_cli(api: Api) -> None:
    assert api.admin.post("/api/users", json={"username": "nightly", "service": True}).status_code == 201
    made = json.loads(ok(annoray(api, "tokens", "--create", "nightly import", "--scope", "read", "--days", "7",
                                 "--user", "nightly", "--json")))
    assert (made["username"], made["scope"]) == ("nightly", "read") and made["token"].startswith("ar_")
    shown = ok(annoray(api, "tokens", "--create", "mine"))
    assert "token made" in shown and "token (shown this once): ar_" in shown
    with api.client(made["token"]) as nightly:
        assert nightly.get("/api/users/me").json()["username"] == "nightly"
    (row,) = [line for line in ok(annoray(api, "tokens", "--all")).splitlines() if "nightly import" in line]
    assert "read" in row and made["token"] not in row
    assert f"token {made['id']} revoked" in ok(annoray(api, "tokens", "--revoke", str(made["id"])))
    with api.client(made["token"]) as nightly:
        assert nightly.get("/api/users/me").status_code == 401
    deadline = time.monotonic() + 10  # the audit row is written just after the answer
    while not any(e["method"] == "DELETE" for e in api.admin.get("/api/audit", params={"path": "/api/tokens"}).json()["items"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    audit = ok(annoray(api, "audit", "--path", "/api/tokens"))
    assert f"DELETE /api/tokens/{made['id']}" in audit and "POST /api/tokens" in audit and "admin" in audit
    assert refused(annoray(api, "audit", as_user=api.user("ann"))).startswith("error 403: [E403]")


def test_users_listed_disabled_enabled_and_a_token_rotated_from_the_cli(api: Api) -> None:
    olivia = api.user("olivia")
    rotated = ok(annoray(api, "users", "rotate-token", as_user=olivia))
    assert "your old token no longer works" in rotated and olivia.get("/api/users/me").status_code == 401
    olivia.headers["Authorization"] = "Bearer " + rotated.split("shown once: ")[1].strip()
    assert olivia.get("/api/users/me").status_code == 200
    assert "olivia disabled" in ok(annoray(api, "users", "disable", "olivia"))
    assert olivia.get("/api/users/me").status_code == 401
    (row,) = [line for line in ok(annoray(api, "users", "list")).splitlines() if "olivia" in line]
    assert row.split("│")[-2].strip() == "False"
    assert "has no token yet" in ok(annoray(api, "users", "enable", "olivia"))
    assert refused(annoray(api, "users", "disable", "admin")).startswith("error 403: [E416]")


def test_servers_deploy_list_preannotate_and_delete_without_a_scheduler(api: Api, cardio: int) -> None:
    server = json.loads(ok(annoray(api, "servers", "deploy", "--project", str(cardio), "--name", "cardio-server", "--json")))
    assert (server["name"], server["status"], [m["name"] for m in server["models"]]) == (
        "cardio-server", "queued", [NAMES["ner"], NAMES["assertion"], NAMES["classification"]])
    (row,) = [line for line in ok(annoray(api, "servers")).splitlines() if "cardio-server" in line]
    assert "queued" in row and "ner_clinic (Drug)" in row
    assert "assertion_clinic (present, absent)" in ok(annoray(api, "servers"))

    job = json.loads(ok(annoray(api, "preannotate", str(cardio), "--server", str(server["id"]), "--no-follow", "--json")))
    assert (job["status"], job["total"], job["server_id"]) == ("queued", len(clinical_sentences()) - 2, server["id"])
    one = ok(annoray(api, "preannotate", str(cardio), "--server", str(server["id"]), "--task", "1", "--no-follow"))
    assert f"with server {server['id']}: queued, 0 of 1 tasks done, 0 failed" in one
    wrong = refused(annoray(api, "preannotate", str(cardio), "--server", str(server["id"]), "--task", "9999", "--no-follow"))
    assert wrong.startswith("error 422: cannot pre-annotate these tasks; task_ids: [E808] task 9999 is not a task of project")

    assert f"server {server['id']} deleted" in ok(annoray(api, "servers", "delete", str(server["id"])))
    assert json.loads(ok(annoray(api, "servers", "--json"))) == []
    assert refused(annoray(api, "servers", "delete", str(server["id"]))).startswith("error 404: ")


def test_cluster_without_a_scheduler_says_how_to_start_one(api: Api) -> None:
    assert refused(annoray(api, "cluster")).startswith("error 503: [E610] the scheduler is not running")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_from_nothing_to_a_pre_annotating_server_with_the_cli_alone_on_ray(training_api: Api, tmp_path: Path) -> None:
    api = training_api
    (config := tmp_path / "config.xml").write_text(NER_CONFIG.format(label="Befund"))
    sentences = [f"Der Patient klagt seit Montag über {e} und Schmerzen." for e in GERMAN]
    (tasks := tmp_path / "tasks.json").write_text(json.dumps([span_task(t, e, "Befund") for t, e in zip(sentences, GERMAN, strict=True)] * 2
                                                           + [{"data": {"text": "Seit gestern Fieber und Husten."}}]))
    ok(annoray(api, "users", "create", "ann"))
    project = json.loads(ok(annoray(api, "projects", "create", "Klinik", "--config", str(config), "--language", "de", "--json")))
    pid = str(project["id"])
    ok(annoray(api, "projects", "members", "add", pid, "ann", "--role", "annotator"))
    assert "imported 17 tasks" in ok(annoray(api, "tasks", "import", pid, str(tasks)))

    (queued,) = json.loads(ok(annoray(api, "train", pid, "--epochs", "2", "--batch-size", "4", "--json")))["jobs"]
    log = without_ray_noise(ok(annoray(api, "jobs", "--job", str(queued["id"]), "--follow")))
    for expected in ("parameters: epochs=2", "epoch 1/2", "epoch 2/2", "model 'ner_klinik_annotation_manual' saved"):
        assert expected in log, expected
    assert log == api.admin.get(f"/api/trainings/{queued['id']}/log").text == without_ray_noise(
        ok(annoray(api, "jobs", "--job", str(queued["id"]), "--log")))
    ended = annoray(api, "jobs", "--job", str(queued["id"]), "--json")
    assert json.loads(ok(ended))["status"] == "succeeded" and "2/2 epochs" in ended.stderr, "stdout is JSON alone, bars go to stderr"
    shown = ok(annoray(api, "jobs", "--job", str(queued["id"])))
    assert "training ner" in shown and "succeeded" in shown and "Befund" in shown and "micro avg" in shown
    assert refused(annoray(api, "jobs", "--job", str(queued["id"]), "--cancel")).startswith("error 409: [E507]")

    # 16 tasks are too few to judge a model: only a forced deploy puts it in the config, and the follow shows why
    out = without_ray_noise(ok(annoray(api, "train", pid, "--epochs", "2", "--batch-size", "4", "--force-deploy", "--follow")))
    assert "queued trainings" in out and "training ner" in out and "2/2 epochs" in out
    (final,) = [line for line in out.splitlines() if "ner_klinik_annotation_manual_v2" in line and "succeeded" in line]
    assert "2/2" in final and "forced" in out
    assert "models the config names: ner_klinik_annotation_manual_v2" in ok(annoray(api, "projects", pid))

    server = json.loads(ok(annoray(api, "servers", "deploy", "--project", pid, "--name", "cli-server", "--wait", "--json")))
    assert server["status"] == "running" and server["deployed_models"] == ["ner_klinik_annotation_manual_v2"], server
    done = ok(annoray(api, "preannotate", pid, "--server", str(server["id"])))
    assert "succeeded, 1 of 1 tasks done, 0 failed" in done and "1/1 tasks" in done
    (row,) = [line for line in ok(annoray(api, "servers")).splitlines() if "cli-server" in line]
    assert "running" in row and "ner_klinik_annotation_manual_v2 (Befund)" in row
    assert f"server {server['id']}" in ok(annoray(api, "servers", str(server["id"])))

    view = json.loads(ok(annoray(api, "cluster", "--json")))
    assert view["nodes"] and view["trainings"] == [] and view["queue"] == [] and [s["name"] for s in view["servers"]] == ["cli-server"]
    table = ok(annoray(api, "cluster"))
    assert view["nodes"][0]["node_id"] in table and "running trainings" in table and "license seats" in table
    assert f"server {server['id']} deleted" in ok(annoray(api, "servers", "delete", str(server["id"])))
    assert json.loads(ok(annoray(api, "servers", "--json"))) == []
