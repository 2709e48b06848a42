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
    """One task: tokens joined by spaces, each BIO/IOB entity a labelled span (a tag without a label counts as O)."""
    from spacy.tokens import Doc
    from spacy.training import biluo_tags_to_offsets, iob_to_biluo
    from spacy.vocab import Vocab

    tokens = [token for token, _ in sentence]
    iob = [tag if tag.partition("-")[2] else "O" for _, tag in sentence]
    doc = Doc(Vocab(), words=tokens, spaces=[True] * len(tokens))
    spans = biluo_tags_to_offsets(doc, iob_to_biluo(iob))
    joined = " ".join(tokens)
    result = [
        {"from_name": from_name, "to_name": to_name, "type": "labels",
         "value": {"start": s, "end": e, "text": joined[s:e], "labels": [label]}}
        for s, e, label in spans
    ]
    return {"data": {to_name: joined}, "annotations": [{"result": result}], "meta": {"tags": list(tags)}}


def conll_to_tasks(path: str | Path, *, tags: Iterable[str] = ()) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [sentence_to_task(s, tags=tags) for s in read_conll(fh)]
