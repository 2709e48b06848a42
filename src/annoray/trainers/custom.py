"""A project owner's own NER training config (a spaCy ``config.cfg``): the pipeline it describes, checked by building it.

Only the config's ``[nlp]`` and ``[components]`` are used: what the model is. How it trains (epochs, batches, learning
rate, dropout) and on what (the platform's selection and split) come from the training request, as for every training,
so ``[training]``, ``[corpora]``, ``[initialize]`` and ``[pretraining]`` are left out. The config names
functions by their registered names only; a function no installed package registers is refused. Code comes only with
the operator's ``ANNORAY_TRAINING__ALLOW_CUSTOM_CODE``: it is run, with the rights of the process, wherever the model is
built or loaded (the API that checks it, the training worker, the replicas that serve it).
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path
from typing import Any

NER_FACTORIES = ("ner", "beam_ner")
KEPT_SECTIONS = ("paths", "system", "nlp", "components")
CODE_FILE = "annoray_code.py"  # beside a model trained with code: run before the model is loaded


class BadConfig(Exception):
    """What is wrong with a config, each problem as (where, message): where is ``section.key`` when it is known."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{where}: {message}" if where else message for where, message in problems))
        self.problems = problems


def run_code(code: str) -> None:
    """Run uploaded code once per process (it registers spaCy functions), as a module named after its hash."""
    name = "annoray_custom_" + hashlib.sha256(code.encode()).hexdigest()[:16]
    if name in sys.modules:
        return
    module = types.ModuleType(name)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)  # noqa: S102  (the operator allowed it: see the module doc)
    sys.modules[name] = module


def ner_pipeline(text: str, *, language: str, labels: list[str], code: str | None = None) -> Any:
    """The blank pipeline the config describes, its NER component given ``labels``; raises `BadConfig`."""
    from confection import ConfigValidationError
    from spacy.util import load_model_from_config
    from thinc.api import Config

    if code:
        try:
            run_code(code)
        except Exception as exc:
            raise BadConfig([("code", f"{type(exc).__name__}: {exc}")]) from None
    try:
        config = Config().from_str(text, interpolate=False)
    except Exception as exc:
        raise BadConfig([("", f"it is not a config spaCy reads ({type(exc).__name__}: {str(exc)[:300]})")]) from None
    missing = [s for s in ("nlp", "components") if s not in config]
    if missing:
        raise BadConfig([(s, "section missing") for s in missing])
    config = Config({k: v for k, v in config.items() if k in KEPT_SECTIONS})
    if config["nlp"].get("lang") != language:
        raise BadConfig([("nlp.lang", f"is {config['nlp'].get('lang')!r}; the project's language is {language!r}")])
    try:
        nlp = load_model_from_config(config, auto_fill=True, validate=True)
    except ConfigValidationError as exc:  # spaCy says where inside a component's block: name the whole path
        # spaCy says where inside a component's block, by the component's name or its factory's: name the whole path
        blocks = {name: name for name in config["components"]} | {
            block.get("factory"): name for name, block in config["components"].items() if isinstance(block, dict)}
        problems = []
        for error in exc.errors:
            head, *rest = [str(p) for p in error.get("loc", ())] or [""]
            where = ".".join(([f"components.{blocks[head.split('.', 1)[0]]}", *head.split(".")[1:]] if head.split(".", 1)[0] in blocks
                              else [head]) + rest)
            problems.append((where, f"{error.get('msg', '')} ({exc.title})" if exc.title else error.get("msg", "")))
        raise BadConfig(problems or [("", str(exc)[:500])]) from None
    except Exception as exc:  # an unregistered function, a wrong argument: spaCy's message names it
        message = str(exc).split("\n\nAvailable names:", 1)[0]
        raise BadConfig([(_where_named(config, message), f"{type(exc).__name__}: {message[:500]}")]) from None
    ner = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in NER_FACTORIES]
    if len(ner) != 1:
        raise BadConfig([("nlp.pipeline", f"needs exactly one component made by 'ner' or 'beam_ner'; it has {len(ner)}")])
    for label in labels:
        nlp.get_pipe(ner[0]).add_label(label)
    return nlp


def _where_named(config: Any, message: str, path: str = "") -> str:
    """The ``section.key`` whose value is a function name quoted in ``message``, or ``""``."""
    for key, value in config.items():
        here = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            if found := _where_named(value, message, here):
                return found
        elif isinstance(value, str) and key.startswith("@") and f"'{value}'" in message:
            return here
    return ""


def dry_run(text: str, *, language: str, code: str | None = None) -> None:
    """Build the pipeline, initialize it and train one step on a one-sentence example: what would break a training
    breaks here, with its reason."""
    from spacy.training import Example

    nlp = ner_pipeline(text, language=language, labels=["LABEL"], code=code)
    doc = nlp.make_doc("annoray checks this config")
    example = Example.from_dict(doc, {"entities": [(0, 7, "LABEL")]})
    try:
        optimizer = nlp.initialize(lambda: [example])
        nlp.update([example], sgd=optimizer)
        list(nlp.pipe(["annoray checks this config"]))
    except Exception as exc:
        raise BadConfig([("components", f"the pipeline does not train: {type(exc).__name__}: {str(exc)[:500]}")]) from None


def load_with_code(path: Path, code: str | None = None) -> Any:
    """Load a saved pipeline, running first the code it needs (given, or kept beside it)."""
    import spacy

    kept = path / CODE_FILE
    code = code or (kept.read_text(encoding="utf-8") if kept.is_file() else None)
    if code:
        run_code(code)
    return spacy.load(path)


def with_code(model_dir: Path, code: str | None) -> None:
    """Keep the code beside the model, for whoever loads it."""
    if code:
        (model_dir / CODE_FILE).write_text(code, encoding="utf-8")
