"""corpus.Corpus: a HumanML3D-layout folder read by name, FMS clips chosen by their metadata;
corpus.read_grades: the grades fine-tuning reads."""
import json

import numpy as np
import pytest

from fmsnb.corpus import META_FILE, Corpus, read_fms_meta, read_grades


@pytest.fixture
def folder(tmp_path):
    meta = {"b": {"movement": "m01", "grade": 3, "view": "front", "mirrored": False},
            "a": {"movement": "m01", "grade": 3, "view": "side", "mirrored": False},
            "Ma": {"movement": "m01", "grade": 3, "view": "side", "mirrored": True},
            "c": {"movement": "m09", "grade": 1, "view": "front", "mirrored": False}}
    for sub in ("new_joints", "new_joint_vecs"):
        (tmp_path / sub).mkdir()
    for k, name in enumerate(meta):
        np.save(tmp_path / "new_joints" / f"{name}.npy", np.full((40, 22, 3), k, np.float32))
        np.save(tmp_path / "new_joint_vecs" / f"{name}.npy", np.full((39, 263), k, np.float32))
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    (tmp_path / "train.txt").write_text("b\nMa\na\n")
    (tmp_path / "test.txt").write_text("c\n")
    return tmp_path


def test_names_and_arrays_by_clip_name(folder):
    corpus = Corpus(folder)
    assert corpus.names("train") == ["b", "Ma", "a"]               # the split file's order
    assert corpus.joints("a").shape == (40, 22, 3) and corpus.joints("a")[0, 0, 0] == 1
    assert corpus.features("c").shape == (39, 263) and corpus.features("c")[0, 0] == 3
    with pytest.raises(FileNotFoundError, match="val.txt"):
        corpus.names("val")


def test_clips_match_every_field_given(folder):
    corpus = Corpus(folder)
    assert corpus.clips(movement="m01") == ["Ma", "a", "b"]         # sorted without a split
    assert corpus.clips(movement="m01", mirrored=False) == ["a", "b"]
    assert corpus.clips(movement="m01", split="train") == ["b", "Ma", "a"]
    assert corpus.clips(grade=3, view="front") == ["b"]
    assert corpus.clips(grade=2) == []
    assert corpus.clips(grade=1, split="test") == ["c"]


def test_meta_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=META_FILE):
        read_fms_meta(tmp_path)
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"{META_FILE}: not a valid JSON"):
        Corpus(tmp_path).meta


def test_read_grades(folder):
    assert read_grades(folder) == {"b": 3, "a": 3, "Ma": 3, "c": 1}
    with pytest.raises(FileNotFoundError, match=META_FILE):
        read_grades(folder / "missing")
