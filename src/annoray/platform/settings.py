"""The one typed settings tree, read from ``ANNORAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseModel):
    """The HTTP control plane."""

    host: str = Field("127.0.0.1", description="Interface `annoray up` binds to.")
    port: int = Field(8765, ge=1, le=65535, description="Port `annoray up` listens on.")
    max_body_bytes: int = Field(
        64 * 2**20, gt=0, description="Largest request body accepted; larger ones get 413."
    )
    max_page_size: int = Field(1000, gt=0, description="Largest page a paged list returns.")


class LabelingConfigSettings(BaseModel):
    """Limits on the labeling config XML."""

    max_bytes: int = Field(256 * 2**10, gt=0, description="Largest labeling config accepted.")
    max_models: int = Field(5, gt=0, description="Most distinct models a config may reference.")


class DatasetSettings(BaseModel):
    """How training data is built from completions."""

    min_examples_per_label: int = Field(
        40, ge=0, description="Fewer examples of a label than this is a warning in the job."
    )
    export_page_size: int = Field(
        500, gt=0, description="Tasks read per database round trip while streaming a selection."
    )


class Settings(BaseSettings):
    """Everything annoray reads from its environment (prefix ``ANNORAY_``, nested with ``__``)."""

    model_config = SettingsConfigDict(env_prefix="ANNORAY_", env_nested_delimiter="__")

    home: Path = Field(
        Path.home() / ".annoray",
        description="Folder holding the SQLite database, the local model store and admin.token.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default: SQLite file under `home`."
    )
    model_store: str | None = Field(
        None, description="Folder or pyarrow URI (s3://, gs://) of the model store; default under `home`."
    )
    api: ApiSettings = Field(default_factory=ApiSettings)
    labeling_config: LabelingConfigSettings = Field(default_factory=LabelingConfigSettings)
    dataset: DatasetSettings = Field(default_factory=DatasetSettings)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'annoray.db'}"

    @property
    def resolved_model_store(self) -> str:
        return self.model_store or str(self.home / "models")

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin.token"
