"""Models brought from outside: what a model folder holds, read from its own files and never trusted.

A spaCy pipeline folder (what ``nlp.to_disk`` writes) is read from its ``meta.json`` and ``config.cfg``, without
loading its weights: its kind comes from its components (``ner`` or ``beam_ner``: NER; ``textcat``: classification,
one label; ``textcat_multilabel``: several), its labels from the meta, its language and vectors too. Every factory it
names must be registered by an installed package, since loading it is what a server will do.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annoray.platform.labeling.config import ModelKind

NER_FACTORIES = ("ner", "beam_ner")
CLASSIFIER_FACTORIES = ("textcat", "textcat_multilabel")


class NotServable(Exception):
    """Why annoray cannot serve a model folder; the message is what the user reads."""


@dataclass(frozen=True)
class ModelFacts:
    kind: ModelKind
    labels: list[str]
    language: str
    engine: str  # the engine that scores it as the platform's own (a deploy's baseline)
    vectors: str | None = None
    multiple: bool = False


def _register_builtin_factories() -> None:
    """spaCy (3.8.5 on) registers its own factories ('ner', 'textcat', ...) only when a pipeline is first built: a
    fresh process would take them for unknown."""
    try:
        from spacy.pipeline.factories import register_factories
    except ImportError:  # an older spaCy registers them on import
        return
    register_factories()


def inspect_spacy(path: Path) -> ModelFacts:
    from spacy.language import Language
    from spacy.util import load_config

    from annoray.trainers.custom import CODE_FILE

    if (path / CODE_FILE).exists():
        raise NotServable(f"it carries code ({CODE_FILE}); an imported model brings none")
    if not (path / "meta.json").is_file() or not (path / "config.cfg").is_file():
        raise NotServable("it is not a spaCy pipeline folder: no meta.json and config.cfg (what nlp.to_disk writes)")
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        config = load_config(path / "config.cfg", interpolate=False)
        pipeline = list(config["nlp"]["pipeline"])
        factories = {name: config["components"][name].get("factory") for name in pipeline}
    except Exception as exc:  # any malformed file is the same answer: it cannot be read
        raise NotServable(f"its meta.json or config.cfg cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from None
    _register_builtin_factories()
    missing = sorted({f for f in factories.values() if f and not Language.has_factory(f)})
    if missing:
        raise NotServable(f"it needs the spaCy factories {', '.join(missing)}, which no installed package registers "
                          "(spacy-transformers registers 'transformer', for example)")
    ner = [name for name, f in factories.items() if f in NER_FACTORIES]
    classifiers = [name for name, f in factories.items() if f in CLASSIFIER_FACTORIES]
    if ner and classifiers or len(ner) + len(classifiers) > 1:
        raise NotServable(f"it holds {len(ner) + len(classifiers)} models ({', '.join(ner + classifiers)}); annoray serves "
                          "one kind per model: save each component in a pipeline of its own")
    if not ner and not classifiers:
        raise NotServable(f"it has no ner, textcat or textcat_multilabel component (only {', '.join(pipeline) or 'none'}): "
                          "nothing to pre-annotate with")
    component = (ner or classifiers)[0]
    labels = (meta.get("labels") or {}).get(component)
    if not labels or not all(isinstance(label, str) for label in labels):
        raise NotServable(f"its meta.json lists no labels for '{component}'")
    vectors = meta.get("vectors") or {}
    return ModelFacts(
        kind=ModelKind.NER if ner else ModelKind.CLASSIFICATION, labels=list(labels), language=str(meta.get("lang", "")),
        engine="spacy.ner.v1" if ner else "spacy.classification.v1",
        vectors=(vectors.get("name") or "unnamed vectors") if vectors.get("width") else None,
        multiple=factories[component] == "textcat_multilabel",
    )


SPARK_KINDS = {"NerDLModel": ModelKind.NER, "ClassifierDLModel": ModelKind.CLASSIFICATION,
               "MultiClassifierDLModel": ModelKind.CLASSIFICATION, "AssertionDLModel": ModelKind.ASSERTION}


JVM_CLASSES = ("org.apache.spark.", "com.johnsnowlabs.")
"""What a stage of a served Spark NLP pipeline may be: pyspark loads any other class by importing the Python module it
names (a PipelineModel saved from Python stages), which would run code from the folder's say-so."""


def _spark_metadata(folder: Path) -> dict[str, Any]:
    part = next((folder / "metadata").glob("part-*"), None)
    if part is None:
        return {}
    found = json.loads(part.read_text(encoding="utf-8").splitlines()[0])
    return found if isinstance(found, dict) else {}


def _spark_class(folder: Path) -> str:
    return str(_spark_metadata(folder).get("class", ""))


def _python_stages(path: Path, stages: list[Path]) -> list[str]:
    """The classes a loader would import as Python: a pipeline saved from Python, or a stage not of Spark or Spark NLP."""
    top = _spark_metadata(path)
    python = [f"the pipeline ({top.get('class')})"] if (top.get("paramMap") or {}).get("language") == "Python" else []
    return python + [name for name in map(_spark_class, stages) if not name.startswith(JVM_CLASSES)]


def inspect_sparknlp(path: Path, settings: Any, language: str) -> ModelFacts:
    """A saved Spark ML ``PipelineModel`` that reads raw text (a DocumentAssembler first) and ends in one Spark NLP
    model annoray serves; its labels are read by loading it on a local Spark (which needs the Spark NLP jar)."""
    from annoray.trainers.sparknlp import missing

    try:
        top = _spark_class(path)
    except (OSError, ValueError):
        top = ""
    if not top.endswith("PipelineModel"):
        raise NotServable("it is not a saved Spark ML PipelineModel folder (metadata/part-00000 naming "
                          "org.apache.spark.ml.PipelineModel); save the whole pipeline, from a DocumentAssembler on")
    stages = sorted((p for p in (path / "stages").iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_", 1)[0]))
    if python := _python_stages(path, stages):
        raise NotServable(f"it names Python classes ({', '.join(python)[:300]}), which loading it would import and run: "
                          "annoray serves pipelines of Spark and Spark NLP stages only")
    classes = [_spark_class(stage).rsplit(".", 1)[-1] for stage in stages]
    if not classes or classes[0] != "DocumentAssembler":
        raise NotServable(f"its first stage is {classes[0] if classes else 'missing'}, not a DocumentAssembler: annoray sends raw text")
    served = [c for c in classes if c in SPARK_KINDS]
    if len(served) != 1:
        raise NotServable(f"it holds {len(served)} of NerDLModel, ClassifierDLModel, MultiClassifierDLModel, AssertionDLModel; "
                          "annoray serves one model per pipeline")
    kind = SPARK_KINDS[served[0]]
    if kind is ModelKind.NER and "NerConverter" not in classes:
        raise NotServable("its NerDLModel is not followed by a NerConverter (output column ner_chunk): annoray reads chunks")
    if why := missing(settings, healthcare=kind is ModelKind.ASSERTION):
        raise NotServable(f"Spark NLP models are read and served with the Spark NLP jar: {why}")
    from pyspark.ml import PipelineModel

    from annoray.trainers.spark import local_spark

    with local_spark([str(settings.sparknlp.jar)]):
        model = PipelineModel.load(str(path))
        stage = next(s for s in model.stages if type(s).__name__ == served[0])
        classes_of = stage.getClasses() if hasattr(stage, "getClasses") else []
    labels = sorted({c.split("-", 1)[1] if c[:2] in ("B-", "I-") else c for c in classes_of if c != "O"})
    if not labels:
        raise NotServable(f"its {served[0]} names no labels")
    return ModelFacts(kind=kind, labels=labels, language=language, engine=f"sparknlp.{kind.value}.v1",
                      multiple=served[0] == "MultiClassifierDLModel")


INSPECTORS = {"spacy": lambda path, settings, language: inspect_spacy(path), "sparknlp": inspect_sparknlp}


def local_copy(uri: str) -> tuple[Path, Any]:
    """A model folder on this machine: a local folder as it is, a pyarrow URI (s3://, gs://) copied into a temporary
    folder (returned too, to clean up). ``http(s)`` is refused: nothing is downloaded."""
    from pyarrow import fs

    if uri.split("://", 1)[0].lower() in ("http", "https"):
        raise NotServable("annoray downloads nothing: copy the model to a folder or a bucket it reads (s3://, gs://, a path)")
    if "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://")).expanduser()
        try:
            found = path.is_dir()
        except OSError as exc:  # a name too long for the filesystem, a folder not ours to read
            raise NotServable(f"it cannot be read here ({exc.strerror or type(exc).__name__})") from None
        if not found:
            raise NotServable(f"there is no folder at {path}")
        return path, None
    try:
        filesystem, base = fs.FileSystem.from_uri(uri)
        if filesystem.get_file_info(base).type != fs.FileType.Directory:
            raise NotServable(f"there is no folder at {uri}")
        tmp = tempfile.TemporaryDirectory(prefix="annoray-import-")
        fs.copy_files(base, tmp.name, source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())
    except NotServable:
        raise
    except Exception as exc:
        raise NotServable(f"{uri} cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from None
    return Path(tmp.name), tmp
