"""Evaluation on the held-out split, in the API's ``metrics`` shape.

NER is scored on entities with strict span match (as conlleval); classification and
assertion per class with accuracy and a confusion matrix; multi-label per label. Beside a model's
scores, `reference` scores what needs no model at all on the same split, so a score can be judged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from annoray.platform.labeling.config import NO_RELATION
from annoray.platform.labeling.datasets import (
    AssertionExample, ClassificationExample, Example, NerExample, RelationExample, VisualNerExample,
)

Span = tuple[int, int, str]


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def _summarise(labels: Sequence[str], tp: Counter, fp: Counter, fn: Counter) -> dict[str, Any]:
    per_label = {label: _prf(tp[label], fp[label], fn[label]) | {"support": tp[label] + fn[label]} for label in labels}
    macro = {k: round(sum(v[k] for v in per_label.values()) / len(labels), 4) if labels else 0.0
             for k in ("precision", "recall", "f1")}
    micro = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"micro": micro, "macro": macro, "per_label": per_label}


def ner_metrics(gold: Iterable[Iterable[Span]], predicted: Iterable[Iterable[Span]], labels: Sequence[str]) -> dict[str, Any]:
    """Entity-level P/R/F1: a prediction counts only when start, end and label all match."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, predicted, strict=True):
        g, p = set(g), set(p)
        for _, _, label in g & p:
            tp[label] += 1
        for _, _, label in p - g:
            fp[label] += 1
        for _, _, label in g - p:
            fn[label] += 1
    return _summarise(labels, tp, fp, fn)


def classification_metrics(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Single-label: per-class P/R/F1, micro and macro, accuracy and the confusion matrix (rows: gold)."""
    tp, fp, fn = Counter(), Counter(), Counter()
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p]] += 1
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    out = _summarise(labels, tp, fp, fn)
    out["accuracy"] = round(sum(tp.values()) / len(gold), 4) if gold else 0.0
    out["confusion_matrix"] = {"labels": list(labels), "matrix": matrix}
    return out


def relation_metrics(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Relations: P/R/F1 per relation label, micro and macro over the relation labels alone (a pair rightly left
    unrelated is no hit, one wrongly related a false positive), accuracy and the confusion matrix with `NO_RELATION`."""
    classes = [*[label for label in labels if label != NO_RELATION], NO_RELATION]
    out = classification_metrics(gold, predicted, classes)
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p != NO_RELATION:
            tp[g] += 1
        elif g != p:
            fp.update([p] if p != NO_RELATION else [])
            fn.update([g] if g != NO_RELATION else [])
    return {**out, **_summarise(classes[:-1], tp, fp, fn)}


def multilabel_metrics(gold: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]], labels: Sequence[str]) -> dict[str, Any]:
    """Multi-label: each label a binary decision per example; per-label, micro and macro P/R/F1."""
    tp, fp, fn = Counter(), Counter(), Counter()
    exact = 0
    for g, p in zip(gold, predicted, strict=True):
        g, p = set(g), set(p)
        exact += g == p
        tp.update(g & p)
        fp.update(p - g)
        fn.update(g - p)
    out = _summarise(labels, tp, fp, fn)
    out["accuracy"] = round(exact / len(gold), 4) if gold else 0.0
    return out


def reference(train: Sequence[Example], dev: Sequence[Example], labels: Sequence[str], *, multiple: bool = False) -> dict[str, Any] | None:
    """The scores, on the held-out split, of a guess that needs no model; None when there is none to make.

    NER: the entity strings of the training split, found again by exact match (longest first) and given the label
    they had most often. Assertion and single-choice classification: the training split's most frequent label for
    every example. Multi-choice: every label that at least half the training examples have.
    """
    if not train or not dev:
        return None
    if isinstance(train[0], VisualNerExample):
        return _word_lexicon(train, dev, labels)  # type: ignore[arg-type]
    if isinstance(train[0], NerExample):
        seen: dict[str, Counter] = {}
        for e in train:
            for start, end, label in e.spans:  # type: ignore[union-attr]
                seen.setdefault(e.text[start:end], Counter())[label] += 1
        lexicon = {text: counts.most_common(1)[0][0] for text, counts in seen.items() if text.strip()}
        if not lexicon:
            return None
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(lexicon, key=len, reverse=True))) + r")(?!\w)")
        predicted = [[(m.start(), m.end(), lexicon[m.group()]) for m in pattern.finditer(e.text)] for e in dev]
        scores = ner_metrics([e.spans for e in dev], predicted, labels)  # type: ignore[union-attr]
        return {"name": f"the {len(lexicon)} entity strings of the training split, matched exactly", **_averages(scores)}
    if isinstance(train[0], RelationExample):
        counts = Counter(e.label for e in train if e.label != NO_RELATION)  # type: ignore[union-attr]
        if not counts:
            return None
        frequent = counts.most_common(1)[0][0]
        scores = relation_metrics([e.label for e in dev], [frequent] * len(dev), labels)  # type: ignore[union-attr]
        return {"name": f"the most frequent relation, '{frequent}', for every pair", **_averages(scores)}
    if isinstance(train[0], AssertionExample | ClassificationExample):
        gold = [[e.label] if isinstance(e, AssertionExample) else list(e.labels) for e in dev]  # type: ignore[union-attr]
        counts = Counter(label for e in train for label in ([e.label] if isinstance(e, AssertionExample) else e.labels))  # type: ignore[union-attr]
        if multiple:
            frequent = [label for label in labels if counts[label] * 2 >= len(train)]
            scores = multilabel_metrics(gold, [frequent] * len(dev), labels)
            return {"name": f"every label of at least half the training examples ({', '.join(frequent) or 'none'})", **_averages(scores)}
        majority = counts.most_common(1)[0][0]
        scores = classification_metrics([g[0] for g in gold], [majority] * len(dev), labels)
        return {"name": f"the most frequent label, '{majority}', for every example", **_averages(scores)}
    return None


def _word_lexicon(train: Sequence[VisualNerExample], dev: Sequence[VisualNerExample], labels: Sequence[str]) -> dict[str, Any] | None:
    """Visual NER's guess: the entities of the training pages as runs of words, found again on each held-out page's
    words (longest first) and given the label they had most often."""
    seen: dict[tuple[str, ...], Counter] = {}
    for e in train:
        for start, end, label in e.spans:
            seen.setdefault(tuple(w[0] for w in e.words[start:end]), Counter())[label] += 1
    lexicon = {words: counts.most_common(1)[0][0] for words, counts in seen.items()}
    if not lexicon:
        return None
    longest = max(map(len, lexicon))
    predicted = []
    for e in dev:
        texts, found, i = [w[0] for w in e.words], [], 0
        while i < len(texts):
            n = next((n for n in range(min(longest, len(texts) - i), 0, -1) if tuple(texts[i:i + n]) in lexicon), 0)
            if n:
                found.append((i, i + n, lexicon[tuple(texts[i:i + n])]))
            i += n or 1
        predicted.append(found)
    scores = ner_metrics([e.spans for e in dev], predicted, labels)
    return {"name": f"the {len(lexicon)} entities of the training pages, as runs of words matched exactly", **_averages(scores)}


def _averages(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: scores[k] for k in ("micro", "macro", "accuracy") if k in scores}
