"""Training engines (built-in spaCy; Spark NLP on Spark-on-Ray), one trainer per model kind, metrics,
training logs and the Ray Train entry point. May import `annoray.platform` only."""

from annoray.trainers import relations, sparknlp, visual_ner  # noqa: F401  (they register the engines that build on engines.py's)
from annoray.trainers.engines import ENGINES, EngineConfig, EpochReport, TrainingEngine, engine_name, get_engine

__all__ = ["ENGINES", "EngineConfig", "EpochReport", "TrainingEngine", "engine_name", "get_engine"]
