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
import json
import os
import re
import resource
import subprocess
import sys
import types
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from annoray.platform.errors import Errors

NER_FACTORIES = ("ner", "beam_ner")
KEPT_SECTIONS = ("paths", "system", "nlp", "components")
CODE_FILE = "annoray_code.py"  # beside a model trained with code: run before the model is loaded
PATH_KEYS = ("source", "path", "paths", "vectors", "init_tok2vec", "lookups")  # keys whose value names something on disk
LOADER = re.compile(r"read|load|disk|copy_from|lookups", re.IGNORECASE)  # registered functions that read files
SIZE_LIMITS = {"rows": 100_000, "width": 1024, "hidden_width": 1024, "embed_size": 100_000, "depth": 16,
               "maxout_pieces": 8, "window_size": 8, "nO": 1024, "nP": 8, "nr_feature_tokens": 16}
"""The largest value an uploaded config may give each size (spaCy's largest shipped configs stay well below)."""
MAX_NUMBER = 1_000_000  # any other number


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
    if problems := list(_unsafe(config)):
        raise BadConfig(problems)
    if config["nlp"].get("lang") != language:
        raise BadConfig([("nlp.lang", f"is {config['nlp'].get('lang')!r}; the project's language is {language!r}")])
    try:
        nlp = load_model_from_config(config, auto_fill=True, validate=True)
    except MemoryError:
        raise
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


def _unsafe(config: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """What in an uploaded config would read from this machine's disk (another project's pipeline, say) or ask for more
    memory than a training may take, as (where, why)."""
    for key, value in config.items():
        here = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            yield from _unsafe(value, here)
        elif path and key in PATH_KEYS and value not in (None, "", "null") and not str(value).startswith("${"):
            yield here, Errors.E629.format(where=here, what=f"'{key}' loads from a path")
        elif key.startswith("@") and isinstance(value, str) and LOADER.search(value):
            yield here, Errors.E629.format(where=here, what=f"'{value}' reads files")
        else:
            numbers = value if isinstance(value, list | tuple) else [value]
            limit = SIZE_LIMITS.get(key, MAX_NUMBER)
            if any(isinstance(n, int | float) and not isinstance(n, bool) and abs(n) > limit for n in numbers):
                yield here, Errors.E630.format(where=here, limit=f"{limit:,}")


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
    except MemoryError:
        raise
    except Exception as exc:
        raise BadConfig([("components", f"the pipeline does not train: {type(exc).__name__}: {str(exc)[:500]}")]) from None


def checked_apart(text: str, *, language: str, code: str | None, memory_mb: int, timeout_s: float) -> None:
    """`dry_run` in a process of its own, held to ``memory_mb`` of address space and ``timeout_s``: a config that asks
    for too much fails there, never in the caller (the API); raises `BadConfig`."""
    job = json.dumps({"text": text, "language": language, "code": code})
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", __name__, str(memory_mb)], input=job, capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise BadConfig([("components", f"building and training it one step took more than {timeout_s:g} s "
                                        "(ANNORAY_TRAINING__CONFIG_CHECK_TIMEOUT_S): make the pipeline smaller")]) from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        why = "ran out of memory" if done.returncode < 0 or "MemoryError" in done.stderr else f"failed ({done.stderr.strip()[-300:]})"
        raise BadConfig([("components", f"the check {why} within {memory_mb} MB (ANNORAY_TRAINING__CONFIG_CHECK_MEMORY_MB): "
                                        "make the pipeline smaller")])
    if answer.get("problems"):
        raise BadConfig([tuple(p) for p in answer["problems"]])


def _check_here(memory_mb: int) -> None:
    """The body of `checked_apart`'s process: the job on stdin, the answer as the last line of stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    job = json.loads(sys.stdin.read())
    try:
        dry_run(job["text"], language=job["language"], code=job["code"])
        problems: list[tuple[str, str]] = []
    except BadConfig as exc:
        problems = exc.problems
    except MemoryError:
        problems = [("components", f"the check ran out of memory within {memory_mb} MB "
                                   "(ANNORAY_TRAINING__CONFIG_CHECK_MEMORY_MB): make the pipeline smaller")]
    print(json.dumps({"problems": problems}))


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


if __name__ == "__main__":
    _check_here(int(sys.argv[1]))
