"""The README opens with the two set-up-and-go commands, CI runs the test one, and its commands work as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEP = "@@ step {} exit "
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -q -e . && "


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_the_main_and_test_commands_and_ci_runs_the_test_one() -> None:
    main, tests = readme_commands()[:2]
    assert "pip install" in main and "annoray quickstart" in main
    assert "pip install" in tests and "pytest" in tests
    assert tests in (ROOT / ".ci/run").read_text()


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_the_readmes_commands_run_as_written_in_order_in_a_fresh_clone(tmp_path: Path) -> None:
    """Every line of the README's shell blocks but the test command (this very suite), in one shell, in a clone of the
    committed tree: the main job (the system packages, the quickstart), then the first API session.

    The clone's `.venv` is this suite's own environment: CI made it from a clean clone with the README's test command,
    whose install differs from the main command's only by the dev extra, so a second venv and install here would prove
    nothing new and cost minutes."""
    clone = tmp_path / "annoray"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    main, _tests, *others = readme_commands()
    assert INSTALL in main, "the main command makes a venv and installs annoray into it"
    lines = [line for block in (main.replace(INSTALL, ""), *others) for line in block.splitlines() if line.strip()]
    script = "".join(f"{line}\necho \"{STEP.format(i)}$?\"\n" for i, line in enumerate(lines)) + "kill %1; wait\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANNORAY_", "VIRTUAL_ENV"))} | {"COLUMNS": "250"}
    done = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True, text=True, env=env, timeout=1100)
    outputs = re.split(r"@@ step \d+ exit \d+\n", done.stdout)
    statuses = [int(s) for s in re.findall(r"@@ step \d+ exit (\d+)", done.stdout)]
    assert statuses == [0] * len(lines), (list(zip(lines, statuses)), done.stdout[-3000:], done.stderr[-3000:])

    quickstart_printed_only_its_own_lines(outputs[0], clone / "annoray-quickstart")
    created = outputs[lines.index(next(line for line in lines if "/api/users" in line and "POST" in line))]
    assert '"username":"olivia"' in created and '"token":"ar_' in created, created
    assert (clone / "annoray-home" / "admin.token").exists()
    left = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True, text=True).stdout
    assert left == "", f"git ignores what the README's commands make (the venv, the homes, the log): {left}"

def quickstart_printed_only_its_own_lines(out: str, home: Path) -> None:
    """The quickstart trained, deployed, pre-annotated, retrained by active learning and redeployed; it said so in
    annoray's own words, with Ray's lines in Ray's log."""
    assert "imported 1657 tasks (60 of them held back unannotated" in out
    for expected in ("ner", "assertion", "classification (temporality)", "Condition", "Absent", "Not particular", "[E302]",
                     "ner_clinical_quickstart_annotation_manual", "assertion_clinical_quickstart_annotation_manual",
                     "classification_temporality_annotation_manual", "micro avg", "macro avg", "first model of its kind"):
        assert expected in out, expected
    assert "server clinical-quickstart-server (id 1) running" in out
    preannotated = int(out.split("pre-annotated ")[1].split(" tasks")[0])
    assert preannotated == 1657 - 1490 + 60, "every task with no completion is pre-annotated"
    flat = " ".join(out.split())  # long lines wrap
    assert "scored on 287 held-out examples; a guess with no model (the most frequent label, 'Present', for every example)" in flat
    assert "least sure of, by uncertainty" in out and "temporality: " in out
    least_sure = [float(line.split("│")[1]) for line in out.split("least sure of")[1].splitlines() if re.match(r"│ \d\.\d{3} ", line)]
    assert len(least_sure) == 5 and least_sure == sorted(least_sure, reverse=True), "rows in the order of the key they show"
    assert "60 completions submitted: training 4, 5, 6 queued (source active_learning); 10 count toward the next one" in out
    retrain = out.split("3. active learning")[1]
    for model in ("ner_clinical_quickstart_annotation_active_learning", "assertion_clinical_quickstart_annotation_active_learning",
                  "classification_temporality_annotation_active_learning"):
        assert f"replaces {model.replace('active_learning', 'manual')}" in retrain, model
        assert f"  {model} (" in retrain.split("server redeployed:")[1], f"the redeployed server serves {model}"
    for where in ("models: " + str(home / "models"), "annoray jobs --job <id> --log", "Ray's own logs"):
        assert where in flat, where
    visual = flat.split("4. Visual NER")[1]
    assert "uploaded 20 sample invoices with their labeled rectangles and 1 new one" in flat
    assert "the quickstart signed a one-day one for this home" in visual and "OCR done: 15 train / 5 test pages" in visual
    assert "visual_ner_invoices_quickstart_annotation_manual" in visual and "server invoices-quickstart-server (id 2) running" in visual
    regions = [line for line in out.split("pre-annotated: Label Studio OCR regions")[1].splitlines() if line.startswith("│ ")]
    labels = {line.split("│")[1].strip() for line in regions}
    assert {"Vendor", "Total"} <= labels and all(re.search(r"x \d+\.\d, y \d+\.\d", line) for line in regions), regions
    assert "Token authentication" not in out and "(raylet)" not in out and "INFO worker.py" not in out, "Ray's lines go to its log"
    assert "Started a local Ray instance" in (home / "ray-driver.log").read_text()
    assert sorted(p.name for p in (home / "models").iterdir()) == sorted(
        [f"{kind}_annotation_{source}" for kind in ("ner_clinical_quickstart", "assertion_clinical_quickstart", "classification_temporality")
         for source in ("manual", "active_learning")] + ["visual_ner_invoices_quickstart_annotation_manual"])
