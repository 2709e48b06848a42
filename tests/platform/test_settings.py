from pathlib import Path

import pytest

from annoray.platform.settings import Settings


def test_settings_come_from_annoray_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANNORAY_HOME", str(tmp_path))
    monkeypatch.setenv("ANNORAY_API__MAX_BODY_BYTES", "1234")
    monkeypatch.setenv("ANNORAY_MODEL_STORE", "s3://bucket/models")
    settings = Settings()
    assert settings.home == tmp_path and settings.api.max_body_bytes == 1234
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'annoray.db'}"
    assert settings.resolved_model_store == "s3://bucket/models"
    monkeypatch.setenv("ANNORAY_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().resolved_database_url == "postgresql+psycopg://u@h/db"
    assert Settings().ocr.page_segmentation == 11, "forms are sparse text"
    monkeypatch.setenv("ANNORAY_OCR__PAGE_SEGMENTATION", "3")
    assert Settings().ocr.page_segmentation == 3
    monkeypatch.setenv("ANNORAY_OCR__PAGE_SEGMENTATION", "2")  # finds no words: refused, with the field named
    with pytest.raises(ValueError, match="ocr.page_segmentation"):
        Settings()


def test_an_engine_may_need_other_resources_than_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNORAY_TRAINING__RESOURCES", '{"ner": {"cpus": 2}, "spacy.ner.v1": {"cpus": 4, "memory_gb": 8}}')
    training = Settings().training
    assert training.spec("ner", "spacy.ner.v1").cpus == 4 and training.spec("ner", "other.ner.v1").cpus == 2
