from pathlib import Path

from annoray.platform.labeling.conll import conll_to_tasks, read_conll


def test_bio_and_iob1_entities_become_character_spans(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("-DOCSTART- -X- -X- O\n\nFamilial\tB-Disease\nadenomatous\tI-Disease\npolyposis\tI-Disease\nis\tO\nrare\tO\n\n"
                    "A\tO\nbreast\tI-Disease\ncancer\tI-Disease\nand\tO\nataxia\tB-Disease\n")
    first, second = conll_to_tasks(path, tags=["train"])
    assert first["data"]["text"] == "Familial adenomatous polyposis is rare"
    (region,) = first["annotations"][0]["result"]
    assert region["value"] == {"start": 0, "end": 30, "text": "Familial adenomatous polyposis", "labels": ["Disease"]}
    assert [r["value"]["text"] for r in second["annotations"][0]["result"]] == ["breast cancer", "ataxia"]
    assert first["meta"]["tags"] == ["train"]


def test_conll2003_four_columns_read_first_and_last() -> None:
    assert list(read_conll(["EU NNP B-NP B-ORG\n", "rejects VBZ B-VP O\n"])) == [[("EU", "B-ORG"), ("rejects", "O")]]
