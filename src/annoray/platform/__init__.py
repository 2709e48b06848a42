"""The domain: projects, members, tasks, completions, predictions, labeling configs, completion
selection, datasets and splits, the model catalog, licenses, settings and the SQL store.

Knows nothing about Ray, HTTP or Spark.
"""

from annoray.platform.errors import AnnorayError, ErrorDetail, Errors
from annoray.platform.labeling.config import LabelingConfig, ModelKind, parse_labeling_config
from annoray.platform.settings import Settings

__all__ = ["AnnorayError", "ErrorDetail", "Errors", "LabelingConfig", "ModelKind", "Settings", "parse_labeling_config"]
