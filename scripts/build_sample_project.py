"""Build the bundled mixed clinical sample project from shared/data/negex (run once; output is committed).

Each row becomes a task: the sentence, with the condition (upper-cased in the source) given
back its natural casing; a NER chunk `Condition` on it, the assertion label `Present`
(Affirmed) or `Absent` (Negated) on the same span, and the temporality as a single choice.
The last 10% of rows are left unannotated, for pre-annotation.

    python scripts/build_sample_project.py ../shared/data/negex/negex_assertions.tsv
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/annoray/platform/samples"
ASSERTION = {"Affirmed": "Present", "Negated": "Absent"}


def build(tsv: Path) -> tuple[list[dict], int]:
    tasks, skipped = [], 0
    with tsv.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:]
    annotated = int(len(rows) * 0.9)
    for i, (_, condition, sentence, negation, temporality, _experiencer) in enumerate(rows):
        condition = " ".join(condition.split())
        words = r"\s+".join(re.escape(w) for w in condition.split())
        pattern = rf"(?<!\w){words}(?!\w)"
        match = next((m for m in re.finditer(pattern, sentence, re.I) if m.group().isupper()), None) or re.search(
            pattern, sentence, re.I
        )
        if not match or negation not in ASSERTION:
            skipped += 1
            continue
        start, end = match.span()
        text = sentence[:start] + condition + sentence[end:]
        task: dict = {"data": {"text": text}}
        if i < annotated:
            span = {"start": start, "end": start + len(condition), "text": condition}
            task["annotations"] = [{"result": [
                {"from_name": "label", "to_name": "text", "type": "labels", "value": span | {"labels": ["Condition"]}},
                {"from_name": "label", "to_name": "text", "type": "labels", "value": span | {"labels": [ASSERTION[negation]]}},
                {"from_name": "temporality", "to_name": "text", "type": "choices", "value": {"choices": [temporality]}},
            ]}]
        tasks.append(task)
    return tasks, skipped


if __name__ == "__main__":
    tasks, skipped = build(Path(sys.argv[1]))
    (OUT / "clinical_tasks.json").write_text(json.dumps(tasks, indent=0, ensure_ascii=False) + "\n")
    print(f"{len(tasks)} tasks written, {skipped} rows skipped (condition not found as whole words in the sentence)")
