"""The Spark NLP engine family: NER (NerDL), classification (ClassifierDL, MultiClassifierDL) and, with the licensed
healthcare library, assertion status (AssertionDL), trained on Spark running on the Ray cluster (``spark.py``).

Offline only: the assembly jar comes from ``ANNORAY_SPARKNLP__JAR``, word embeddings from a folder registered in the
catalog (``kind: sparknlp_embeddings``, loaded with ``WordEmbeddingsModel.load``), NerDL's TensorFlow graphs from
``ANNORAY_SPARKNLP__GRAPHS``; nothing calls ``.pretrained()``. The training data is the platform's own selection and
split (CoNLL for NER, text and labels for classification), so both families learn the same examples; the held-out
split is scored by annoray's own metrics from the model's predictions, so both families compare line by line.

Progress: the approaches write a line per epoch to ``setOutputLogsPath``; the engine reads them while Spark trains and
reports each. Spark NLP's approaches keep no checkpoint between epochs: a worker restarted by Ray Train trains again
from the first epoch (said in its log).
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from annoray.platform.labeling.config import ModelKind
from annoray.platform.labeling.datasets import LANGUAGES, AssertionExample, ClassificationExample, Example, NerExample
from annoray.platform.models.training import TrainingParams
from annoray.platform.settings import Settings
from annoray.trainers.engines import CHECKPOINT_DIR, CHECKPOINT_STATE, MODEL_DIR, EpochReport, TrainingEngine, register

EPOCH_LINE = re.compile(r"Epoch (\d+)/(\d+) - ([\d.]+)s - loss: ([\d.eE+-]+)")
GRAPH_NAME = re.compile(r"blstm_(\d+)_(\d+)_(\d+)_(\d+)\.pb$")
LIBRARIES = {"pyspark": "pyspark", "raydp": "raydp", "sparknlp": "spark-nlp"}


def missing(settings: Settings, *, healthcare: bool = False, graphs: bool = False) -> str | None:
    """Why the Spark NLP family cannot train here, or None."""
    absent = [pip for module, pip in LIBRARIES.items() if importlib.util.find_spec(module) is None]
    if absent:
        return (f"the Python package{'s' if len(absent) > 1 else ''} {', '.join(absent)} {'are' if len(absent) > 1 else 'is'} "
                "not installed (pip install 'annoray[spark]')")
    config = settings.sparknlp
    if config.jar is None:
        return "no Spark NLP jar is configured: set ANNORAY_SPARKNLP__JAR to the assembly jar (it is never downloaded)"
    if not config.jar.is_file():
        return f"the Spark NLP jar {config.jar} (ANNORAY_SPARKNLP__JAR) does not exist"
    if graphs and (config.graphs is None or not config.graphs.is_dir()):
        return "NerDL needs its TensorFlow graphs: set ANNORAY_SPARKNLP__GRAPHS to a folder of blstm_*.pb graphs"
    if healthcare:
        if importlib.util.find_spec("sparknlp_jsl") is None:
            return "the licensed healthcare library (sparknlp_jsl) is not installed"
        if config.healthcare_jar is None or not config.healthcare_jar.is_file() or not config.healthcare_license:
            return "the healthcare jar and licence are not configured (ANNORAY_SPARKNLP__HEALTHCARE_JAR, __HEALTHCARE_LICENSE)"
    return None


def graph_for(folder: Path, tags: int, dim: int, chars: int) -> str | None:
    """Why no graph in ``folder`` fits, or None: NerDL needs one with at least ``tags`` tags and ``chars`` characters,
    for ``dim``-dimension embeddings (the names say: blstm_<tags>_<dim>_<lstm>_<chars>.pb)."""
    found = [tuple(int(g) for g in m.groups()) for p in folder.glob("*.pb") if (m := GRAPH_NAME.search(p.name))]
    if any(t >= tags and d == dim and c >= chars for t, d, _, c in found):
        return None
    have = ", ".join(f"{t} tags / dim {d} / {c} chars" for t, d, _, c in sorted(found)) or "none"
    return (f"no NerDL graph in {folder} fits {tags} tags, {dim}-dimension embeddings and {chars} characters (it has: "
            f"{have}); make blstm_{tags}_{dim}_128_{max(chars, 100)}.pb with Spark NLP's create_graph and put it there")


class SparkNlpEngine(TrainingEngine):
    """Trains on a Spark session on Ray sized from the job's placement (``config.spark``: jar, graphs, cpus,
    memory_gb, node_ip, dim: the embeddings' dimension), and saves a Spark ML ``PipelineModel`` that reads raw text."""

    family = "sparknlp"
    languages = LANGUAGES
    healthcare = False

    @classmethod
    def unavailable(cls, settings: Settings) -> str | None:
        return missing(settings, healthcare=cls.healthcare, graphs=cls.kind is ModelKind.NER)

    @classmethod
    def versions(cls) -> dict[str, str]:
        import pyspark
        import sparknlp

        return {"spark-nlp": sparknlp.version(), "pyspark": pyspark.__version__}

    def train(self, *, train: Sequence[Example], dev: Sequence[Example], params: TrainingParams,
              output_dir: Path) -> Iterator[EpochReport]:
        from annoray.trainers.spark import ExecutorPlan, spark_on_ray

        spark_config = self.config.spark or {}
        checkpoint = output_dir / CHECKPOINT_DIR
        checkpoint.mkdir(parents=True, exist_ok=True)
        logs = output_dir / "spark-logs"
        logs.mkdir(exist_ok=True)
        plan = ExecutorPlan.of(spark_config.get("cpus", 2), spark_config.get("memory_gb", 4))
        jars = [str(spark_config["jar"])] + ([str(spark_config["healthcare_jar"])] if self.healthcare else [])
        with spark_on_ray(f"annoray-{self.name}", plan, jars=jars, node_ip=spark_config.get("node_ip")) as spark:
            stages, frame = self._training_input(spark, train, params, logs)
            fitted: dict[str, Any] = {}
            thread = threading.Thread(target=self._fit, args=(stages, frame, fitted), daemon=True)
            thread.start()
            seen, loss = 0, 0.0
            began = time.perf_counter()
            while True:
                alive = thread.is_alive()  # read before the logs: a run that ends now has written all its lines
                for epoch, seconds, loss in self._epochs(logs)[seen:]:
                    seen = epoch
                    if epoch < params.epochs:  # the last epoch is reported with the held-out scores below
                        (checkpoint / CHECKPOINT_STATE).write_text(json.dumps({"epoch": epoch}))
                        yield EpochReport(epoch, params.epochs, loss, seconds, params.learning_rate_at(epoch - 1))
                if not alive:
                    break
                thread.join(1.0)
            if "error" in fitted:
                raise fitted["error"]
            model = self._serving_pipeline(fitted["model"])
            model.write().overwrite().save(str(output_dir / MODEL_DIR))
            metrics = self._score(model, dev) if dev else {}
        (checkpoint / CHECKPOINT_STATE).write_text(json.dumps({"epoch": params.epochs}))
        yield EpochReport(params.epochs, params.epochs, loss, round(time.perf_counter() - began, 3),
                          params.learning_rate_at(params.epochs - 1), metrics)

    @staticmethod
    def _fit(stages: list[Any], frame: Any, out: dict[str, Any]) -> None:
        from pyspark.ml import Pipeline

        try:
            out["model"] = Pipeline(stages=stages).fit(frame)
        except Exception as exc:  # raised again in the training thread, with Spark's own message
            out["error"] = exc

    @staticmethod
    def _epochs(logs: Path) -> list[tuple[int, float, float]]:
        """(epoch from 1, seconds, loss) of every epoch line the approach has written so far."""
        found = []
        for path in sorted(logs.glob("*.log")):
            for match in EPOCH_LINE.finditer(path.read_text(errors="replace")):
                found.append((int(match[1]), float(match[3]), float(match[4])))
        if found and found[0][0] == 0:  # ClassifierDL counts epochs from 0
            found = [(e + 1, s, loss) for e, s, loss in found]
        return found

    def _approach_params(self, approach: Any, params: TrainingParams, logs: Path) -> Any:
        return (approach.setMaxEpochs(params.epochs).setLr(params.learning_rate).setBatchSize(params.batch_size)
                .setRandomSeed(params.seed).setEnableOutputLogs(True).setOutputLogsPath(str(logs)).setValidationSplit(0.0))

    def _reader(self) -> list[Any]:
        """Raw text to sentences, tokens and word embeddings: the front of every saved pipeline."""
        from sparknlp.annotator import SentenceDetector, Tokenizer, WordEmbeddingsModel
        from sparknlp.base import DocumentAssembler

        return [DocumentAssembler().setInputCol("text").setOutputCol("document"),
                SentenceDetector().setInputCols(["document"]).setOutputCol("sentence"),
                Tokenizer().setInputCols(["sentence"]).setOutputCol("token"),
                WordEmbeddingsModel.load(str(self.config.embeddings)).setInputCols(["sentence", "token"]).setOutputCol("embeddings")]

    def _training_input(self, spark: Any, train: Sequence[Example], params: TrainingParams, logs: Path) -> tuple[list[Any], Any]:
        raise NotImplementedError

    def _serving_pipeline(self, fitted: Any) -> Any:
        return fitted

    def _score(self, model: Any, dev: Sequence[Example]) -> dict[str, Any]:
        raise NotImplementedError

    def evaluate(self, model_dir: Path, dev: Sequence[Example]) -> dict[str, Any]:
        """A saved model scored on a local Spark of this process (a deploy's baseline)."""
        from pyspark.ml import PipelineModel

        from annoray.trainers.spark import local_spark

        spark_config = self.config.spark or {}
        jars = [str(spark_config["jar"])] + ([str(spark_config["healthcare_jar"])] if self.healthcare else [])
        with local_spark(jars):
            return self._score(PipelineModel.load(str(model_dir)), dev)


@register
class SparkNlpNer(SparkNlpEngine):
    name = "sparknlp.ner.v1"
    kind = ModelKind.NER

    def _training_input(self, spark: Any, train: Sequence[Example], params: TrainingParams, logs: Path) -> tuple[list[Any], Any]:
        from sparknlp.annotator import NerDLApproach, WordEmbeddingsModel
        from sparknlp.training import CoNLL

        from annoray.trainers.spark import conll

        examples = [e for e in train if isinstance(e, NerExample)]
        path = logs.parent / "train.conll"
        path.write_text(conll(examples, self.config.language), encoding="utf-8")
        chars = len({c for e in examples for c in e.text})
        tags = 2 * len(self.config.labels) + 1
        why = graph_for(Path((self.config.spark or {})["graphs"]), tags, int((self.config.spark or {}).get("dim", 100)), chars)
        if why:
            raise ValueError(why)
        frame = CoNLL().readDataset(spark, str(path))
        embeddings = WordEmbeddingsModel.load(str(self.config.embeddings)).setInputCols(["sentence", "token"]).setOutputCol("embeddings")
        ner = self._approach_params(NerDLApproach(), params, logs).setInputCols(["sentence", "token", "embeddings"]) \
            .setLabelColumn("label").setOutputCol("ner").setPo(params.decay).setDropout(params.dropout) \
            .setIncludeConfidence(True).setGraphFolder(str((self.config.spark or {})["graphs"]))
        return [embeddings, ner], frame

    def _serving_pipeline(self, fitted: Any) -> Any:
        from pyspark.ml import PipelineModel
        from sparknlp.annotator import NerConverter

        ner = fitted.stages[-1]
        converter = NerConverter().setInputCols(["sentence", "token", "ner"]).setOutputCol("ner_chunk")
        return PipelineModel(stages=[*self._reader(), ner, converter])

    def _score(self, model: Any, dev: Sequence[Example]) -> dict[str, Any]:
        from sparknlp.base import LightPipeline

        from annoray.trainers.metrics import ner_metrics

        examples = [e for e in dev if isinstance(e, NerExample)]
        results = LightPipeline(model).fullAnnotate([e.text for e in examples])
        predicted = [[(c.begin, c.end + 1, c.metadata["entity"]) for c in r["ner_chunk"]] for r in results]
        return ner_metrics([e.spans for e in examples], predicted, self.config.labels)


@register
class SparkNlpClassification(SparkNlpEngine):
    name = "sparknlp.classification.v1"
    kind = ModelKind.CLASSIFICATION

    def _training_input(self, spark: Any, train: Sequence[Example], params: TrainingParams, logs: Path) -> tuple[list[Any], Any]:
        from pyspark.sql import functions
        from sparknlp.annotator import ClassifierDLApproach, MultiClassifierDLApproach

        from annoray.trainers.spark import classification_frame

        frame = classification_frame(spark, [e for e in train if isinstance(e, ClassificationExample)])
        if not self.config.multiple:
            frame = frame.withColumn("labels", functions.element_at("labels", 1))
        approach = MultiClassifierDLApproach() if self.config.multiple else ClassifierDLApproach().setDropout(params.dropout)
        approach = self._approach_params(approach, params, logs).setInputCols(["sentence_embeddings"]) \
            .setLabelColumn("labels").setOutputCol("category")
        return [*self._reader(), self._sentence_embeddings(), approach], frame

    @staticmethod
    def _sentence_embeddings() -> Any:
        from sparknlp.annotator import SentenceEmbeddings

        return SentenceEmbeddings().setInputCols(["document", "embeddings"]).setOutputCol("sentence_embeddings") \
            .setPoolingStrategy("AVERAGE")

    def _score(self, model: Any, dev: Sequence[Example]) -> dict[str, Any]:
        from sparknlp.base import LightPipeline

        from annoray.trainers.metrics import classification_metrics, multilabel_metrics

        examples = [e for e in dev if isinstance(e, ClassificationExample)]
        results = LightPipeline(model).fullAnnotate([e.text for e in examples])
        predicted = [sorted({a.result for a in r["category"]}) for r in results]
        if self.config.multiple:
            return multilabel_metrics([e.labels for e in examples], predicted, self.config.labels)
        return classification_metrics([e.labels[0] for e in examples], [p[0] if p else "" for p in predicted], self.config.labels)


@register
class SparkNlpAssertion(SparkNlpEngine):
    """AssertionDL of the licensed healthcare library, over the chunk each example marks."""

    name = "sparknlp.assertion.v1"
    kind = ModelKind.ASSERTION
    healthcare = True

    def _training_input(self, spark: Any, train: Sequence[Example], params: TrainingParams, logs: Path) -> tuple[list[Any], Any]:
        from pyspark.sql.types import IntegerType, StringType, StructField, StructType
        from sparknlp_jsl.annotator import AssertionDLApproach  # type: ignore[import-not-found]

        examples = [e for e in train if isinstance(e, AssertionExample)]
        schema = StructType([StructField(n, t) for n, t in (("text", StringType()), ("target", StringType()),
                                                              ("start", IntegerType()), ("end", IntegerType()), ("label", StringType()))])
        frame = spark.createDataFrame([(e.text, e.text[e.start:e.end], *self._token_span(e), e.label) for e in examples], schema)
        approach = self._approach_params(AssertionDLApproach(), params, logs) \
            .setInputCols(["sentence", "chunk", "embeddings"]).setOutputCol("assertion").setLabelCol("label") \
            .setStartCol("start").setEndCol("end").setDropout(params.dropout) \
            .setGraphFolder(str((self.config.spark or {})["graphs"]))
        return [*self._reader(), self._chunker(), approach], frame

    def _token_span(self, example: AssertionExample) -> tuple[int, int]:
        """The chunk as token indexes (first, last) of its sentence, as AssertionDL's start and end columns are."""
        import spacy

        doc = spacy.blank(self.config.language).make_doc(example.text)
        span = doc.char_span(example.start, example.end, alignment_mode="expand")
        return (span.start, span.end - 1) if span is not None else (0, 0)

    @staticmethod
    def _chunker() -> Any:
        from sparknlp.base import Doc2Chunk

        return Doc2Chunk().setInputCols(["document"]).setChunkCol("target").setOutputCol("chunk")

    def _score(self, model: Any, dev: Sequence[Example]) -> dict[str, Any]:
        from pyspark.sql import SparkSession

        from annoray.trainers.metrics import classification_metrics

        examples = [e for e in dev if isinstance(e, AssertionExample)]
        spark = SparkSession.getActiveSession()
        frame = spark.createDataFrame([(i, e.text, e.text[e.start:e.end]) for i, e in enumerate(examples)], ["i", "text", "target"])
        rows = model.transform(frame).select("i", "assertion.result").collect()
        found = {row["i"]: (row["result"] or [""])[0] for row in rows}
        return classification_metrics([e.label for e in examples], [found.get(i, "") for i in range(len(examples))], self.config.labels)
