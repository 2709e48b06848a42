"""The model store keeps whole model folders under a local folder or a pyarrow URI, never overwriting one."""

from pathlib import Path

import pytest

from annoray.trainers.store import ModelStore


@pytest.fixture(params=["folder", "uri"])
def store_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    where = tmp_path / "store"
    return (str(where) if request.param == "folder" else where.as_uri()), where


def model_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / f"model-{text}"
    (folder / "ner").mkdir(parents=True)
    (folder / "meta.json").write_text(text)
    (folder / "ner" / "model").write_bytes(b"\x00weights")
    return folder


def test_a_model_goes_in_whole_and_comes_back_out(store_root, tmp_path: Path) -> None:
    root, where = store_root
    store = ModelStore(root)
    uri = store.put(model_folder(tmp_path, "v1"), "ner_x_annotation_manual")
    assert uri == f"{root.rstrip('/')}/ner_x_annotation_manual" and store.exists("ner_x_annotation_manual")
    assert sorted(p.name for p in where.iterdir()) == ["ner_x_annotation_manual"], "staging left behind"
    out = store.get("ner_x_annotation_manual", tmp_path / "out")
    assert (out / "meta.json").read_text() == "v1" and (out / "ner" / "model").read_bytes() == b"\x00weights"


def test_an_existing_model_is_never_overwritten(store_root, tmp_path: Path) -> None:
    root, _ = store_root
    store = ModelStore(root)
    store.put(model_folder(tmp_path, "v1"), "m")
    with pytest.raises(FileExistsError, match="model 'm' already exists"):
        store.put(model_folder(tmp_path, "v2"), "m")
    assert (store.get("m", tmp_path / "out") / "meta.json").read_text() == "v1"
