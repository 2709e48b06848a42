"""What a pre-annotation server computes: chunk-level entities with a confidence, assertion status on
those chunks, the relations between them, document classes, and rule matches, for a batch of texts (or texts with
their entities given, when an annotator marked them); and for document pages (their OCR words and size), the Visual
NER entities with the words' boxes, one per line the entity spans.

Plain Python over spaCy, so a Serve replica, a benchmark and a test run the same code. Entities are
spaCy's own spans: the tokens of one entity are one region with character offsets. Their confidence
is the probability of the greedy parse through the entity, read from the parse itself (``confidence.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annoray.platform.labeling.config import NO_RELATION
from annoray.platform.labeling.datasets import sentence_around, sentence_pairs
from annoray.platform.labeling.rules import compile_regex
from annoray.serve_apps.confidence import pipe_with_confidence
from annoray.serve_apps.spark_models import SparkNlpModel
from annoray.trainers.custom import load_with_code
from annoray.trainers.engines import mark_chunk
from annoray.trainers.relations import mark_pair



@dataclass(frozen=True)
class ServedModel:
    """A catalog model as a server loads it: its name, kind, labels, and the local folder holding it."""

    name: str
    kind: str  # ner | assertion | classification | visual_ner | relation
    path: str
    labels: tuple[str, ...] = ()
    engine: str | None = None  # sparknlp.*: a Spark NLP pipeline, run on the replica's local Spark
    jars: tuple[str, ...] = ()  # what that Spark loads


@dataclass(frozen=True)
class ServedRule:
    """A regex or dictionary rule: every match becomes an entity with the rule's label."""

    name: str
    label: str
    kind: str  # regex | dictionary
    pattern: str | None = None
    terms: tuple[str, ...] = ()


@dataclass
class TextPrediction:
    """The server's output for one text, before it is written as Label Studio JSON for a project."""

    entities: list[dict[str, Any]] = field(default_factory=list)  # start, end, text, label, score, model (id: given)
    relations: list[dict[str, Any]] = field(default_factory=list)  # from, to (indexes into entities), label, score, model
    assertions: list[dict[str, Any]] = field(default_factory=list)  # start, end, text, label, score, model
    classes: list[dict[str, Any]] = field(default_factory=list)  # model, multiple, scores {label: p}
    rules: list[dict[str, Any]] = field(default_factory=list)  # start, end, text, label, rule
    page: dict[str, Any] | None = None  # a page's width and height, when the input was a page
    regions: list[dict[str, Any]] = field(default_factory=list)  # a page's entities: label, score, model, text, lines

    def as_dict(self) -> dict[str, Any]:
        out = {"entities": self.entities, "relations": self.relations, "assertions": self.assertions, "classes": self.classes,
               "rules": self.rules}
        return out | ({"page": self.page, "regions": self.regions} if self.page is not None else {})


class Predictor:
    """spaCy models (at most ``max_models``, the settings' limit) and any rules, loaded once; `predict` runs them all
    over a batch of texts."""

    def __init__(self, models: list[ServedModel], rules: list[ServedRule] = (), *, language: str = "en",  # type: ignore[assignment]
                 batch_size: int = 64, max_models: int | None = None):
        import spacy

        if max_models is not None and len(models) > max_models:
            raise ValueError(f"a server holds at most {max_models} models, not {len(models)}")
        self.models = [(m, _load(m)) for m in models]
        self.batch_size = batch_size
        self.sentences = spacy.blank(language)
        self.sentences.add_pipe("sentencizer")
        self.regexes = [(r, compile_regex(r.pattern or "")) for r in rules if r.kind == "regex"]
        self.dictionary = None
        terms = [r for r in rules if r.kind == "dictionary"]
        if terms:
            from spacy.matcher import PhraseMatcher

            self.dictionary = PhraseMatcher(self.sentences.vocab, attr="LOWER")
            for rule in terms:
                self.dictionary.add(rule.name, list(self.sentences.tokenizer.pipe(rule.terms)))
            self.rule_labels = {r.name: r.label for r in terms}

    def predict(self, items: list[str | dict[str, Any]]) -> list[TextPrediction]:
        """Texts; texts whose entities are given, as ``{"text", "entities": [{"start", "end", "label", "id"}, ...]}``
        (no NER model runs on them: the other models read the given entities); and pages as
        ``{"words": [[text, x0, y0, x1, y1, block, line], ...], "width", "height"}``."""
        out = [TextPrediction() for _ in items]
        texts = [(item, prediction) for item, prediction in zip(items, out, strict=True) if not isinstance(item, dict) or "text" in item]
        pages = [(item, prediction) for item, prediction in zip(items, out, strict=True) if isinstance(item, dict) and "text" not in item]
        for item, prediction in texts:
            if isinstance(item, dict):
                prediction.entities = [_given(item["text"], e) for e in item.get("entities") or []]
        if texts:
            self._texts([t if isinstance(t, str) else t["text"] for t, _ in texts], [p for _, p in texts],
                        given=[isinstance(t, dict) for t, _ in texts])
        if pages:
            self._pages([p for p, _ in pages], [p for _, p in pages])
        return out

    def _pages(self, pages: list[dict[str, Any]], out: list[TextPrediction]) -> None:
        from annoray.trainers.visual_ner import page_doc

        for page, prediction in zip(pages, out, strict=True):
            prediction.page = {"width": page["width"], "height": page["height"]}
        for model, nlp in self.models:
            if model.kind != "visual_ner":
                continue
            docs = [page_doc(nlp, p["words"], p["width"], p["height"]) for p in pages]
            for page, (doc, scores), prediction in zip(pages, pipe_with_confidence(nlp, docs, self.batch_size), out, strict=True):
                for ent, score in zip(doc.ents, scores, strict=True):
                    words = page["words"][ent.start:ent.end]
                    prediction.regions.append({"label": ent.label_, "score": score, "model": model.name,
                                               "text": " ".join(str(w[0]) for w in words), "lines": _lines(words)})

    def _texts(self, texts: list[str], out: list[TextPrediction], given: list[bool]) -> None:
        found = [(text, prediction) for text, prediction, g in zip(texts, out, given, strict=True) if not g]
        for model, nlp in self.models:
            if model.kind == "ner" and found:
                self._entities(model, nlp, [t for t, _ in found], [p for _, p in found])
            elif model.kind == "classification":
                self._classes(model, nlp, texts, out)
        for model, nlp in self.models:
            if model.kind == "assertion":
                self._assertions(model, nlp, texts, out)
            elif model.kind == "relation":
                self._relations(model, nlp, texts, out)
        if self.regexes or self.dictionary is not None:
            self._rules(texts, out)

    def _entities(self, model: ServedModel, nlp: Any, texts: list[str], out: list[TextPrediction]) -> None:
        if isinstance(nlp, SparkNlpModel):
            for text, found, prediction in zip(texts, nlp.entities(texts), out, strict=True):
                prediction.entities += [{"start": s, "end": e, "text": text[s:e], "label": label, "score": score, "model": model.name}
                                        for s, e, label, score in found]
            return
        for (doc, scores), prediction in zip(pipe_with_confidence(nlp, texts, self.batch_size), out, strict=True):
            for ent, score in zip(doc.ents, scores, strict=True):
                prediction.entities.append({"start": ent.start_char, "end": ent.end_char, "text": ent.text, "label": ent.label_,
                                            "score": score, "model": model.name})

    def _classes(self, model: ServedModel, nlp: Any, texts: list[str], out: list[TextPrediction]) -> None:
        if isinstance(nlp, SparkNlpModel):
            for scores, prediction in zip(nlp.categories(texts), out, strict=True):
                prediction.classes.append({"model": model.name, "multiple": nlp.multiple, "scores": scores})
            return
        multiple = _component(nlp, ("textcat_multilabel",)) is not None
        for doc, prediction in zip(nlp.pipe(texts, batch_size=self.batch_size), out, strict=True):
            prediction.classes.append({"model": model.name, "multiple": multiple,
                                       "scores": {k: round(float(v), 4) for k, v in doc.cats.items()}})

    def _assertions(self, model: ServedModel, nlp: Any, texts: list[str], out: list[TextPrediction]) -> None:
        """Label every entity the server's NER models found, from its sentence with the chunk marked."""
        asks: list[tuple[TextPrediction, dict[str, Any]]] = []
        marked: list[str] = []
        chunks: list[tuple[str, str]] = []  # (sentence, chunk): what AssertionDL reads
        for text, prediction in zip(texts, out, strict=True):
            if not prediction.entities:
                continue
            doc = self.sentences(text)
            for ent in prediction.entities:
                s, e = sentence_around(doc, ent["start"], ent["end"])
                marked.append(mark_chunk(text[s:e], ent["start"] - s, ent["end"] - s))
                chunks.append((text[s:e], ent["text"]))
                asks.append((prediction, ent))
        if isinstance(nlp, SparkNlpModel):
            for (prediction, ent), (label, score) in zip(asks, nlp.assertions(chunks), strict=True):
                prediction.assertions.append({"start": ent["start"], "end": ent["end"], "text": ent["text"], "label": label,
                                              "score": score, "model": model.name})
            return
        for (prediction, ent), doc in zip(asks, nlp.pipe(marked, batch_size=self.batch_size), strict=True):
            label, score = max(doc.cats.items(), key=lambda kv: kv[1])
            prediction.assertions.append({"start": ent["start"], "end": ent["end"], "text": ent["text"], "label": label,
                                          "score": round(float(score), 4), "model": model.name})

    def _relations(self, model: ServedModel, nlp: Any, texts: list[str], out: list[TextPrediction]) -> None:
        """The relation of every pair of entities in one sentence (both orders, when the model learnt directed
        relations); pairs it finds unrelated are left out."""
        directed = nlp.meta.get("annoray", {}).get("directed", True)
        asks: list[tuple[TextPrediction, int, int]] = []
        marked: list[str] = []
        for text, prediction in zip(texts, out, strict=True):
            if len(prediction.entities) < 2:
                continue
            entities = prediction.entities
            for (s, e), members, a, b in sentence_pairs(self.sentences(text), [(x["start"], x["end"]) for x in entities],
                                                        directed=directed):
                spans = [(entities[i]["start"] - s, entities[i]["end"] - s, entities[i]["label"]) for i in members]
                marked.append(mark_pair(text[s:e], spans, a, b))
                asks.append((prediction, members[a], members[b]))
        for (prediction, head, tail), doc in zip(asks, nlp.pipe(marked, batch_size=self.batch_size), strict=True):
            label, score = max(doc.cats.items(), key=lambda kv: kv[1])
            if label != NO_RELATION:
                prediction.relations.append({"from": head, "to": tail, "label": label, "score": round(float(score), 4),
                                             "model": model.name, "directed": directed})

    def _rules(self, texts: list[str], out: list[TextPrediction]) -> None:
        for text, prediction in zip(texts, out, strict=True):
            for rule, regex in self.regexes:
                for match in regex.finditer(text):
                    if match.end() > match.start():
                        prediction.rules.append({"start": match.start(), "end": match.end(), "text": match.group(0),
                                                 "label": rule.label, "rule": rule.name})
            if self.dictionary is not None:
                doc = self.sentences.make_doc(text)
                for match_id, start, end in self.dictionary(doc):
                    span, name = doc[start:end], self.sentences.vocab.strings[match_id]
                    prediction.rules.append({"start": span.start_char, "end": span.end_char, "text": span.text,
                                             "label": self.rule_labels[name], "rule": name})


def _given(text: str, entity: dict[str, Any]) -> dict[str, Any]:
    """An entity an annotator marked, as the server's own: it has no score, and keeps its region id."""
    start, end = int(entity["start"]), int(entity["end"])
    return {"start": start, "end": end, "text": text[start:end], "label": entity["label"], "score": None, "model": None,
            "id": entity.get("id")}


def _load(model: ServedModel) -> Any:
    """A spaCy pipeline (its code run first, when it was trained with some), or a Spark NLP pipeline."""
    if model.engine and model.engine.startswith("sparknlp."):
        return SparkNlpModel(model.path, list(model.jars))
    return load_with_code(Path(model.path))


def _component(nlp: Any, factories: tuple[str, ...]) -> str | None:
    """The name of the pipeline's first component made by one of ``factories``."""
    return next((name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in factories), None)


def _lines(words: list[list[Any]]) -> list[dict[str, Any]]:
    """An entity's words grouped by the line they sit on: per line, the box holding them and their text."""
    lines: dict[Any, list[list[Any]]] = {}
    for word in words:
        lines.setdefault(word[6], []).append(word)
    return [{"box": [min(w[1] for w in ws), min(w[2] for w in ws), max(w[3] for w in ws), max(w[4] for w in ws)],
             "text": " ".join(str(w[0]) for w in ws)} for ws in lines.values()]
