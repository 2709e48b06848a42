"""annoray: train NLP models from human annotations and serve them as pre-annotation servers, on Ray."""

__version__ = "0.1.0"
