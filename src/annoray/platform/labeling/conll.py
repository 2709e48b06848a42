"""Read CoNLL files (``token<TAB>tag`` or CoNLL-2003's four columns) into Label Studio tasks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def read_conll(lines: Iterable[str]) -> Iterator[list[tuple[str, str]]]:
    """Sentences as (token, tag) lists; blank lines separate sentences, -DOCSTART- lines are skipped."""
    sentence: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("-DOCSTART-"):
            if sentence:
                yield sentence
            sentence = []
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        sentence.append((cols[0], cols[-1] if len(cols) > 1 else "O"))
    if sentence:
        yield sentence


def sentence_to_task(
    sentence: list[tuple[str, str]], *, from_name: str = "label", to_name: str = "text", tags: Iterable[str] = ()
) -> dict[str, Any]:
    """One task: tokens joined by spaces, each BIO/IOB entity a labelled span."""
    text, spans, offset = [], [], 0
    current: list[Any] | None = None
    for token, tag in sentence:
        start, end = offset, offset + len(token)
        text.append(token)
        offset = end + 1
        prefix, _, label = tag.partition("-")
        if tag == "O" or not label:
            current = None
            continue
        if prefix == "B" or current is None or current[2] != label:
            current = [start, end, label]
            spans.append(current)
        else:
            current[1] = end
    joined = " ".join(text)
    result = [
        {"from_name": from_name, "to_name": to_name, "type": "labels",
         "value": {"start": s, "end": e, "text": joined[s:e], "labels": [label]}}
        for s, e, label in spans
    ]
    return {"data": {to_name: joined}, "annotations": [{"result": result}], "meta": {"tags": list(tags)}}


def conll_to_tasks(path: str | Path, *, tags: Iterable[str] = ()) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [sentence_to_task(s, tags=tags) for s in read_conll(fh)]
