"""Label Studio style labeling configs: hardened parsing, validation, and the model kinds they imply.

The platform's own attributes: ``model`` (the catalog model that predicts a label or a
``Choices`` group), ``assertion="true"`` (an assertion status label, predicted on NER
chunks over the same span), ``choice="single"|"multiple"`` and ``train="true"`` on
``Choices``, ``directed="false"`` on ``Relations`` (relations without a direction; Label Studio's default is a
direction, from the first region to the second).
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from annoray.platform.errors import ErrorDetail, Errors, InvalidInput
from annoray.platform.labeling.kinds import (  # noqa: F401 (every name of the config's parsed form is here too)
    CHILD_TAGS, CHOSEN_FROM, CONTROL_TAGS, GROUP_KEYS, KNOWN_TAGS, LAYOUT_TAGS, NO_RELATION, OBJECT_TAGS, TEXT_OBJECTS,
    ClassificationGroup, LabelGroup, LabelingConfig, ModelKind, region_labels,
)


UNNAMED_CONTROLS = frozenset({"Relations"})
"""Controls Label Studio writes with no ``name`` or ``toName``: ``<Relations>`` joins the regions of the others."""


UNNAMED_CONTROLS = frozenset({"Relations"})
"""Controls Label Studio writes with no ``name`` or ``toName``: ``<Relations>`` joins the regions of the others."""


def hardened_parser(*, keep_comments: bool = False) -> etree.XMLParser:
    """The one XML parser for labeling configs: no entities, no network, no DTD, no huge trees, no processing
    instructions; comments dropped unless a rewrite must keep them."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=not keep_comments, remove_pis=True,
    )


def label_kind(*, assertion: bool, object_tag: str | None) -> ModelKind:
    """The kind of model a ``<Label>`` of a ``Labels`` group trains: assertion status where it is marked so, else NER
    on a text object and Visual NER on an image."""
    if assertion:
        return ModelKind.ASSERTION
    return ModelKind.NER if object_tag in TEXT_OBJECTS else ModelKind.VISUAL_NER


def parse_labeling_config(
    xml: str,
    *,
    catalog: Mapping[str, str] | None = None,
    max_bytes: int = 256 * 2**10,
    max_models: int | None = None,
) -> LabelingConfig:
    """Parse and validate a config, raising `InvalidInput` with every error found (line, tag, message).

    Args:
        catalog: model name -> kind for the models a config may reference; None skips the
            catalog checks (unknown model, model of the wrong kind).
        max_models: the most models a config may name (``labeling_config.max_models`` in the settings); None for
            a config already stored, whose limit was checked when it was saved.
    """
    size = len(xml.encode())
    if size > max_bytes:
        raise InvalidInput("invalid labeling config", [ErrorDetail(Errors.E102.format(size=size, limit=max_bytes), field="labeling_config")])
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise InvalidInput("invalid labeling config", [ErrorDetail(Errors.E103, field="labeling_config", line=1)])
    try:
        root = etree.fromstring(xml.encode(), hardened_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else None
        raise InvalidInput("invalid labeling config", [ErrorDetail(Errors.E101.format(msg=exc.msg), field="labeling_config", line=line)]) from None
    return _Validator(root, xml, catalog, max_models).run()


class _Validator:
    def __init__(self, root: etree._Element, xml: str, catalog: Mapping[str, str] | None, max_models: int | None):
        self.root, self.xml, self.catalog, self.max_models = root, xml, catalog, max_models
        self.errors: list[ErrorDetail] = []

    def error(self, el: etree._Element, message: str) -> None:
        self.errors.append(ErrorDetail(message, line=el.sourceline, tag=el.tag if isinstance(el.tag, str) else None))

    def run(self) -> LabelingConfig:
        root = self.root
        if root.tag != "View":
            self.error(root, Errors.E104.format(tag=root.tag))
        elements = [el for el in root.iter() if isinstance(el.tag, str)]
        for el in elements:
            if el.tag not in KNOWN_TAGS:
                self.error(el, Errors.E105.format(tag=el.tag, known=", ".join(sorted(KNOWN_TAGS))))
            elif el.tag in CHILD_TAGS and (el.getparent() is None or el.getparent().tag not in CHILD_TAGS[el.tag]):
                self.error(el, Errors.E118.format(tag=el.tag, parent=" or ".join(CHILD_TAGS[el.tag])))

        objects = self._objects(elements)
        controls = self._controls(elements, objects)
        ner, assertion, visual = self._label_groups(elements, objects)
        classification = self._classification_groups(elements, objects)
        relation = self._relation_group(elements, ner)
        if not any((ner, assertion, visual, classification)) and not any(
            el.tag in CONTROL_TAGS for el in elements
        ):
            self.error(root, Errors.E120)
        config = LabelingConfig(
            xml=self.xml, objects=objects, ner=ner, assertion=assertion, visual_ner=visual,
            classification_groups=tuple(classification), controls=controls, relation=relation,
            rules={rule.strip(): el.get("name") for el in elements if el.tag == "Labels" and el.get("rules")
                   for rule in el.get("rules").split(",") if rule.strip()},
            targets={el.get("name"): el.get("toName") for el in elements if el.tag in CONTROL_TAGS and el.get("name")},
        )
        self._check_models(config, elements)
        if self.errors:
            unique = {(e.line, e.tag, e.message): e for e in self.errors}
            self.errors = sorted(unique.values(), key=lambda e: e.line or 0)
            raise InvalidInput(Errors.E121.format(count=len(self.errors)), self.errors)
        return config

    def _objects(self, elements: list[etree._Element]) -> dict[str, tuple[str, str]]:
        objects: dict[str, tuple[str, str]] = {}
        first_line: dict[str, int] = {}
        for el in elements:
            if (el.tag not in OBJECT_TAGS and el.tag not in CONTROL_TAGS) or el.tag in UNNAMED_CONTROLS:
                continue
            name = el.get("name")
            if not name:
                self.error(el, Errors.E106.format(tag=el.tag, attr="name"))
                continue
            if name in first_line:
                self.error(el, Errors.E107.format(name=name, first_line=first_line[name]))
                continue
            first_line[name] = el.sourceline
            if el.tag in OBJECT_TAGS:
                value = el.get("value")
                if not value:
                    self.error(el, Errors.E106.format(tag=el.tag, attr="value"))
                    continue
                objects[name] = (el.tag, value.removeprefix("$"))
        return objects

    def _controls(self, elements: list[etree._Element], objects: Mapping[str, tuple[str, str]]) -> dict[str, str]:
        controls: dict[str, str] = {}
        for el in elements:
            if el.tag not in CONTROL_TAGS or not el.get("name") or el.tag in UNNAMED_CONTROLS:
                continue
            controls[el.get("name")] = el.tag
            to_name = el.get("toName")
            if not to_name:
                self.error(el, Errors.E106.format(tag=el.tag, attr="toName"))
                continue
            for target in to_name.split(","):
                if target not in objects:
                    self.error(el, Errors.E108.format(to_name=target, names=", ".join(objects) or "none"))
        return controls

    def _bool_attr(self, el: etree._Element, attr: str) -> bool:
        value = el.get(attr)
        if value is None:
            return False
        if value not in ("true", "false"):
            self.error(el, Errors.E111.format(attr=attr, value=value, allowed="true, false"))
        return value == "true"

    def _children(self, el: etree._Element, child: str) -> list[etree._Element]:
        kids = [c for c in el if c.tag == child]
        if not kids:
            self.error(el, Errors.E109.format(tag=el.tag, child=child))
        seen: set[str] = set()
        for c in kids:
            value = c.get("value")
            if not value:
                self.error(c, Errors.E106.format(tag=child, attr="value"))
            elif value in seen:
                self.error(c, Errors.E110.format(value=value, tag=el.tag, name=el.get("name")))
            seen.add(value or "")
        return [c for c in kids if c.get("value")]

    def _target(self, el: etree._Element, objects: Mapping[str, tuple[str, str]]) -> tuple[str, str] | None:
        to_name = (el.get("toName") or "").split(",")[0]
        return (to_name, objects[to_name][0]) if to_name in objects else None

    def _label_groups(self, elements: list[etree._Element], objects: Mapping[str, tuple[str, str]]):  # type: ignore[no-untyped-def]
        ner: dict[str, str | None] = {}
        assertion: dict[str, str | None] = {}
        visual: dict[str, str | None] = {}
        names: dict[str, list[str]] = {"ner": [], "assertion": [], "visual": []}
        targets: dict[str, str] = {}
        label_from: dict[str, dict[str, str]] = {"ner": {}, "assertion": {}, "visual": {}}
        for el in elements:
            if el.tag not in ("Labels", "RectangleLabels") or not el.get("name"):
                continue
            labels = self._children(el, "Label")
            target = self._target(el, objects)
            if target is None:
                continue
            to_name, obj_tag = target
            for label in labels:
                is_assertion = self._bool_attr(label, "assertion")
                key = GROUP_KEYS[label_kind(assertion=is_assertion, object_tag=obj_tag)]
                if is_assertion and obj_tag not in TEXT_OBJECTS:
                    self.error(label, Errors.E119.format(tag=obj_tag))
                    continue
                bucket = {"ner": ner, "assertion": assertion, "visual": visual}[key]
                bucket[label.get("value")] = label.get("model")
                label_from[key].setdefault(label.get("value"), el.get("name"))
                if el.get("name") not in names[key]:
                    names[key].append(el.get("name"))
                targets.setdefault(key, to_name)

        def group(kind: ModelKind, key: str, labels: dict[str, str | None]) -> LabelGroup | None:
            if not labels:
                return None
            return LabelGroup(kind, tuple(names[key]), targets[key], tuple(labels), labels, label_from=label_from[key])

        return (
            group(ModelKind.NER, "ner", ner),
            group(ModelKind.ASSERTION, "assertion", assertion),
            group(ModelKind.VISUAL_NER, "visual", visual),
        )

    def _classification_groups(self, elements: list[etree._Element], objects: Mapping[str, tuple[str, str]]) -> list[ClassificationGroup]:
        groups = []
        for el in elements:
            if el.tag != "Choices" or not el.get("name"):
                continue
            choices = self._children(el, "Choice")
            choice = el.get("choice", "single")
            if choice not in ("single", "multiple"):
                self.error(el, Errors.E111.format(attr="choice", value=choice, allowed="single, multiple"))
            train = self._bool_attr(el, "train")
            target = self._target(el, objects)
            if target is None:
                continue
            groups.append(
                ClassificationGroup(
                    name=el.get("name"), to_name=target[0], choices=tuple(c.get("value") for c in choices),
                    multiple=choice == "multiple", train=train, model=el.get("model"),
                )
            )
        trained = [g.name for g in groups if g.train]
        if len(trained) > 1:
            el = next(e for e in elements if e.tag == "Choices" and e.get("name") == trained[1])
            self.error(el, Errors.E117.format(names=", ".join(trained)))
        return groups

    def _relation_group(self, elements: list[etree._Element], ner: LabelGroup | None) -> LabelGroup | None:
        """The relation labels of ``<Relations>`` (one such tag), between the entities of the NER group; a
        ``<Relations>`` with no ``<Relation>`` lets annotators draw unlabeled relations, which train nothing."""
        tags = [el for el in elements if el.tag == "Relations"]
        if len(tags) > 1:
            self.error(tags[1], Errors.E125.format(count=len(tags)))
        if not tags or not [c for c in tags[0] if c.tag == "Relation"]:
            return None
        el = tags[0]
        relations = self._children(el, "Relation")
        undirected = el.get("directed") is not None and not self._bool_attr(el, "directed")
        if ner is None:
            self.error(el, Errors.E124)
            return None
        labels = {r.get("value"): r.get("model") for r in relations}
        return LabelGroup(ModelKind.RELATION, (el.get("name") or "relations",), ner.to_name, tuple(labels), labels,
                          name=el.get("name"), directed=not undirected)

    def _check_models(self, config: LabelingConfig, elements: list[etree._Element]) -> None:
        def where(model: str) -> etree._Element:
            return next(e for e in elements if e.get("model") == model)

        ner_models = {m for m in (config.ner.models.values() if config.ner else ()) if m}
        if config.assertion:
            assertion_models = sorted({m for m in config.assertion.models.values() if m})
            for label, model in config.assertion.models.items():
                if model and (model in ner_models or (self.catalog or {}).get(model) == ModelKind.NER):
                    self.error(where(model), Errors.E112.format(label=label, model=model))
            if len(assertion_models) > 1:
                self.error(where(assertion_models[1]), Errors.E113.format(count=len(assertion_models), models=", ".join(assertion_models)))
        models = config.models
        if self.max_models is not None and len(models) > self.max_models:
            self.error(where(models[self.max_models]), Errors.E114.format(count=len(models), models=", ".join(models), limit=self.max_models))
        if self.catalog is None:
            return
        expected: list[tuple[str, str | None, ModelKind]] = []
        for group in (config.ner, config.assertion, config.visual_ner):
            if group:
                expected += [(label, model, group.kind) for label, model in group.models.items()]
        expected += [(g.name, g.model, ModelKind.CLASSIFICATION) for g in config.classification_groups]
        if config.relation:
            expected += [(label, model, ModelKind.RELATION) for label, model in config.relation.models.items()]
        for label, model, kind in expected:
            if not model:
                continue
            actual = self.catalog.get(model)
            if actual is None:
                self.error(where(model), Errors.E115.format(model=model))
            elif actual != kind and not (kind is ModelKind.ASSERTION and actual == ModelKind.NER):
                self.error(where(model), Errors.E116.format(label=label, model=model, kind=actual, expected=kind.value))
