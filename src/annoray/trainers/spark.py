"""Spark on the Ray cluster, for the Spark NLP engines: a session sized from a job's placement, and the training data
of the platform's own selection and split as Spark DataFrames.

Spark runs through RayDP: its master and executors are Ray actors, so they are scheduled, placed and accounted for by
Ray like everything else. A training's Ray Train worker is the Spark driver (half of the job: Spark NLP trains in the driver); the executors
take the rest, on the node the scheduler placed the job on, and are stopped when the training ends, whatever happens.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from annoray.platform.labeling.datasets import ClassificationExample, NerExample

DRIVER_MEMORY_GB = 2.0  # a local Spark's driver (a replica's, or a model scored outside a training)


@dataclass(frozen=True)
class ExecutorPlan:
    """How a job's resources are shared between the Spark driver (the Ray Train worker) and its executors.

    Spark NLP's deep-learning approaches (NerDL, ClassifierDL, AssertionDL) train with TensorFlow in the driver's JVM;
    the executors compute the embeddings. So the driver keeps half of the job, the executors share the other half.
    """

    driver_cpus: float
    driver_memory_gb: float
    executors: int
    cores: int
    memory_gb: int

    @classmethod
    def of(cls, cpus: float, memory_gb: float) -> ExecutorPlan:
        """One executor per 4 cores of the executors' half (at least one executor of one core and 1 GB)."""
        driver_cpus = max(1.0, math.floor(cpus / 2))
        driver_memory = max(2.0, math.floor(memory_gb / 2))
        cores_left = max(1, math.floor(cpus - driver_cpus))
        executors = max(1, cores_left // 4)
        return cls(driver_cpus, driver_memory, executors, max(1, cores_left // executors),
                   max(1, math.floor((memory_gb - driver_memory) / executors)))


@contextmanager
def spark_on_ray(app_name: str, plan: ExecutorPlan, *, jars: Sequence[str] = (), node_ip: str | None = None,
                 configs: dict[str, str] | None = None) -> Iterator[Any]:
    """A Spark session whose executors are Ray actors (on ``node_ip`` when given); stopped on leaving, even on error."""
    import raydp

    conf = {"spark.driver.memory": f"{max(1, int(plan.driver_memory_gb) - 1)}g",  # a GB for the Python around it
            "spark.sql.shuffle.partitions": str(max(2, plan.executors * plan.cores)),
            "spark.pyspark.python": sys.executable,
            "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", **(configs or {})}
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if node_ip:  # every Ray node offers node:<ip>; asking a sliver of it pins the executors there
        conf[f"spark.ray.raydp_spark_executor.actor.resource.node:{node_ip}"] = "0.001"
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors' Python workers: this environment, as Ray's workers have it
    spark = raydp.init_spark(app_name, num_executors=plan.executors, executor_cores=plan.cores,
                             executor_memory=f"{plan.memory_gb}GB", fault_tolerant_mode=False, configs=conf)
    try:
        yield spark
    finally:
        raydp.stop_spark()


@contextmanager
def local_spark(jars: Sequence[str]) -> Iterator[Any]:
    """A Spark of this process alone (a replica's, or a model scored outside a training), with the given jars."""
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]").appName("annoray-local").config("spark.jars", ",".join(jars))
             .config("spark.ui.enabled", "false").config("spark.driver.memory", f"{int(DRIVER_MEMORY_GB)}g").getOrCreate())
    try:
        yield spark
    finally:
        spark.stop()


def conll(examples: Sequence[NerExample], language: str) -> str:
    """NER examples as CoNLL 2003 text (``-DOCSTART-``, then ``token -X- -X- IOB-tag`` lines, a blank line between
    documents), tokenized as the spaCy engines tokenize the same language, so both families learn the same spans."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for tokens, tags in ner_rows(examples, language):
        lines += [f"{token} -X- -X- {tag}" for token, tag in zip(tokens, tags, strict=True)] + [""]
    return "\n".join(lines) + "\n"


def ner_rows(examples: Sequence[NerExample], language: str) -> list[tuple[list[str], list[str]]]:
    """Each example's tokens and IOB tags (a span that does not fall on token edges is left out, as spaCy does)."""
    import spacy
    from spacy.training import biluo_tags_to_spans, offsets_to_biluo_tags
    from spacy.training.iob_utils import biluo_to_iob

    nlp = spacy.blank(language)
    rows = []
    for example in examples:
        doc = nlp.make_doc(example.text)
        biluo = offsets_to_biluo_tags(doc, list(example.spans))
        kept = {(s.start, s.end, s.label_) for s in biluo_tags_to_spans(doc, [t if t != "-" else "O" for t in biluo])}
        tags = biluo_to_iob([t if t != "-" else "O" for t in biluo])
        if kept or not example.spans:
            rows.append(([t.text for t in doc if not t.is_space], [tag for t, tag in zip(doc, tags, strict=True) if not t.is_space]))
    return rows


def ner_frame(spark: Any, examples: Sequence[NerExample], language: str) -> Any:
    """The NER examples as a DataFrame of (text, tokens, tags), one row per example."""
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    schema = StructType([StructField("text", StringType()), StructField("tokens", ArrayType(StringType())),
                         StructField("tags", ArrayType(StringType()))])
    rows = [(" ".join(tokens), tokens, tags) for tokens, tags in ner_rows(examples, language)]
    return spark.createDataFrame(rows, schema)


def classification_frame(spark: Any, examples: Sequence[ClassificationExample]) -> Any:
    """The classification examples as a DataFrame of (text, labels): one label per row for single choice, all of them for
    several (what ClassifierDL and MultiClassifierDL read)."""
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    schema = StructType([StructField("text", StringType()), StructField("labels", ArrayType(StringType()))])
    return spark.createDataFrame([(e.text, list(e.labels)) for e in examples], schema)
