"""Tests of fmsnb.atomic: a failed write keeps the previous file (or folder), torch files
round-trip, junk is one ValueError saying what the file should have been."""
import pytest
import torch

from fmsnb import atomic


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = atomic.write_text(tmp_path / "sub" / "a.json", "old")
    assert path.read_text() == "old"

    def crash(f):
        f.write(b"partial")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic.write(path, crash)
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with atomic.temporary_folder(target) as tmp:
            (tmp / "new.txt").write_text("partial")
            raise OSError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]             # no temporary left
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic.temporary_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert atomic.replace_folder(tmp, target) == target
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_torch_files_round_trip_and_junk_is_a_value_error_naming_the_file(tmp_path):
    path = atomic.torch_save({"w": torch.arange(3)}, tmp_path / "w.pt")
    assert torch.equal(atomic.torch_load(path, "weights")["w"], torch.arange(3))
    path.write_text("hello\n")
    with pytest.raises(ValueError, match=rf"^{path}: not weights \(\w+Error: "):
        atomic.torch_load(path, f"{path}: not weights")
