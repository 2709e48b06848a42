"""Training engines (built-in spaCy; Spark NLP on Spark-on-Ray), one trainer per model kind, metrics,
training logs and the Ray Train entry point. May import `annoray.platform` only."""
