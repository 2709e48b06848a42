"""Spark NLP models in a pre-annotation replica: a saved ``PipelineModel`` run through a ``LightPipeline`` on a local
Spark inside the replica (one JVM per replica, its memory part of the server's ``sparknlp`` replica spec)."""

from __future__ import annotations

from typing import Any


class SparkNlpModel:
    """One Spark NLP pipeline that reads raw text: entities (``ner_chunk``), or categories with their scores."""

    spark: Any = None  # the replica's local Spark, shared by its Spark NLP models

    def __init__(self, path: str, jars: list[str]):
        from pyspark.ml import PipelineModel
        from sparknlp.base import LightPipeline

        if SparkNlpModel.spark is None:
            from pyspark.sql import SparkSession

            SparkNlpModel.spark = (SparkSession.builder.master("local[1]").appName("annoray-replica")
                                   .config("spark.jars", ",".join(jars)).config("spark.ui.enabled", "false")
                                   .config("spark.driver.memory", "2g").getOrCreate())
        self.model = model = PipelineModel.load(path)
        self.multiple = any(type(stage).__name__ == "MultiClassifierDLModel" for stage in model.stages)
        self.light = LightPipeline(model)

    def entities(self, texts: list[str]) -> list[list[tuple[int, int, str, float | None]]]:
        """(start, end, label, confidence) per text; NerDL's confidence when the model kept it."""
        out = []
        for result in self.light.fullAnnotate(texts):
            found = []
            for chunk in result.get("ner_chunk", []):
                score = chunk.metadata.get("confidence")
                found.append((chunk.begin, chunk.end + 1, chunk.metadata["entity"], round(float(score), 4) if score else None))
            out.append(found)
        return out

    def categories(self, texts: list[str]) -> list[dict[str, float]]:
        """Every label's score per text (ClassifierDL keeps them in its annotation's metadata)."""
        out = []
        for result in self.light.fullAnnotate(texts):
            scores: dict[str, float] = {}
            for annotation in result.get("category", []):
                for label, value in annotation.metadata.items():
                    if label != "sentence":
                        scores[label] = max(scores.get(label, 0.0), round(float(value), 4))
            out.append(scores)
        return out

    def assertions(self, chunks: list[tuple[str, str]]) -> list[tuple[str, float]]:
        """(label, confidence) of each (sentence, chunk): AssertionDL reads the chunk from a ``target`` column."""
        if not chunks:
            return []
        frame = SparkNlpModel.spark.createDataFrame([(i, text, target) for i, (text, target) in enumerate(chunks)],
                                                    ["i", "text", "target"])
        found = {}
        for row in self.model.transform(frame).select("i", "assertion").collect():
            annotation = (row["assertion"] or [None])[0]
            found[row["i"]] = (annotation.result, round(float(annotation.metadata.get("confidence", 0.0)), 4)) if annotation else ("", 0.0)
        return [found.get(i, ("", 0.0)) for i in range(len(chunks))]
