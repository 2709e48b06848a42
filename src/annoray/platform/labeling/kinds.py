"""What a labeling config implies: the model kinds, their label groups, and the tags annoray reads (the parsed form
that ``config.py`` validates and builds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

OBJECT_TAGS = frozenset({"Text", "HyperText", "Image", "Paragraphs", "Table"})
CONTROL_TAGS = frozenset(
    {"Labels", "RectangleLabels", "Rectangle", "Choices", "Relations", "TextArea", "Rating", "Number", "DateTime", "Taxonomy"}
)
CHILD_TAGS = {"Label": ("Labels", "RectangleLabels"), "Choice": ("Choices", "Taxonomy"), "Relation": ("Relations",)}
LAYOUT_TAGS = frozenset({"View", "Header", "Style", "Filter", "Collapse"})
KNOWN_TAGS = OBJECT_TAGS | CONTROL_TAGS | LAYOUT_TAGS | frozenset(CHILD_TAGS)
TEXT_OBJECTS = frozenset({"Text", "HyperText"})
NO_RELATION = "no relation"
"""The class a relation model predicts for two entities that no relation joins."""
CHOSEN_FROM = 0.5
"""In a multiple-choice group, a choice is chosen when its class score is at least this (training and serving alike)."""


class ModelKind(StrEnum):
    NER = "ner"
    ASSERTION = "assertion"
    CLASSIFICATION = "classification"
    VISUAL_NER = "visual_ner"
    RELATION = "relation"


@dataclass(frozen=True)
class LabelGroup:
    """The labels of one kind read from a config: what a model of that kind learns and predicts."""

    kind: ModelKind
    from_names: tuple[str, ...]
    to_name: str
    labels: tuple[str, ...]
    models: Mapping[str, str | None] = field(default_factory=dict)  # label -> model attribute
    name: str | None = None  # the Choices name for classification
    multiple: bool = False
    label_from: Mapping[str, str] = field(default_factory=dict)  # label -> the control tag that holds it
    directed: bool = True  # relations: from the first region to the second, or either way


@dataclass(frozen=True)
class ClassificationGroup:
    name: str
    to_name: str
    choices: tuple[str, ...]
    multiple: bool
    train: bool
    model: str | None


@dataclass(frozen=True)
class LabelingConfig:
    """A validated labeling config and what it implies for training and pre-annotation."""

    xml: str
    objects: Mapping[str, tuple[str, str]]  # name -> (tag, data key read from "$key")
    ner: LabelGroup | None
    assertion: LabelGroup | None
    visual_ner: LabelGroup | None
    classification_groups: tuple[ClassificationGroup, ...]
    controls: Mapping[str, str]  # control name -> tag
    rules: Mapping[str, str] = field(default_factory=dict)  # rule name -> the <Labels> that opted into it (rules="a,b")
    targets: Mapping[str, str] = field(default_factory=dict)  # control name -> the object it labels (toName)
    relation: LabelGroup | None = None  # <Relations>: the labels of relations between the NER group's entities

    @property
    def classification(self) -> LabelGroup | None:
        """The one Choices group trained per run: the one with train="true", else the alphabetically first."""
        if not self.classification_groups:
            return None
        chosen = next((g for g in self.classification_groups if g.train), None)
        chosen = chosen or min(self.classification_groups, key=lambda g: g.name)
        return LabelGroup(
            kind=ModelKind.CLASSIFICATION,
            from_names=(chosen.name,),
            to_name=chosen.to_name,
            labels=chosen.choices,
            models={c: chosen.model for c in chosen.choices},
            name=chosen.name,
            multiple=chosen.multiple,
        )

    def group(self, kind: ModelKind) -> LabelGroup | None:
        return {
            ModelKind.NER: self.ner,
            ModelKind.ASSERTION: self.assertion,
            ModelKind.CLASSIFICATION: self.classification,
            ModelKind.VISUAL_NER: self.visual_ner,
            ModelKind.RELATION: self.relation,
        }[kind]

    @property
    def kinds(self) -> list[ModelKind]:
        return [k for k in ModelKind if self.group(k) is not None]

    @property
    def models(self) -> list[str]:
        """Every distinct model the config references, in order of appearance."""
        seen: dict[str, None] = {}
        for group in (self.ner, self.assertion, self.visual_ner):
            if group:
                seen.update((m, None) for m in group.models.values() if m)
        seen.update((g.model, None) for g in self.classification_groups if g.model)
        if self.relation:
            seen.update((m, None) for m in self.relation.models.values() if m)
        return list(seen)

    def control(self, tag: str, to_name: str) -> str | None:
        """The name of the first ``tag`` control on the object ``to_name`` (e.g. the <Rectangle> or <TextArea> of an
        image), or None."""
        return next((name for name, t in self.controls.items() if t == tag and self.targets.get(name) == to_name), None)

    def data_key(self, to_name: str) -> str:
        return self.objects[to_name][1]

    def summary(self) -> dict[str, object]:
        """The derived model kinds, as the API shows them."""
        out: dict[str, object] = {}
        for kind in self.kinds:
            g = self.group(kind)
            assert g is not None
            entry: dict[str, object] = {"labels": list(g.labels), "to_name": g.to_name, "from_names": list(g.from_names)}
            if kind is ModelKind.RELATION:
                entry["directed"] = g.directed
            if kind is ModelKind.CLASSIFICATION:
                entry.update(name=g.name, choice="multiple" if g.multiple else "single")
                entry["groups"] = [
                    {"name": c.name, "choice": "multiple" if c.multiple else "single", "choices": list(c.choices)}
                    for c in self.classification_groups
                ]
            out[kind.value] = entry
        return out


def region_labels(value: dict) -> list:
    """The labels a Label Studio region carries, whichever control made it (Labels, RectangleLabels, Choices)."""
    return value.get("labels") or value.get("rectanglelabels") or value.get("choices") or []


GROUP_KEYS = {ModelKind.NER: "ner", ModelKind.ASSERTION: "assertion", ModelKind.VISUAL_NER: "visual"}
