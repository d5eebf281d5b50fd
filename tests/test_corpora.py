import pytest

from fmsnb import atomic, corpora
from fmsnb.config import load_profile

TINY = """name: tiny
seed: 0
standin:
  clips_per_action: 1
fms_standin:
  subjects: 3
  max_episodes: 1
fms:
  views: [front]
  mirror: false
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "tiny.yml").write_text(TINY)
    return tmp_path


def test_standin_is_generated_once_and_remade_when_settings_change(root):
    cfg = load_profile("tiny", root=root)
    folder = corpora.humanml3d_root(cfg, progress=False)
    assert (folder / "Mean.npy").is_file() and (folder / corpora.MARKER).is_file()
    stamp = (folder / "Mean.npy").stat().st_mtime_ns
    assert corpora.humanml3d_root(cfg, progress=False) == folder
    assert (folder / "Mean.npy").stat().st_mtime_ns == stamp        # reused, not remade
    cfg.standin.clips_per_action = 2
    corpora.humanml3d_root(cfg, progress=False)
    assert (folder / "Mean.npy").stat().st_mtime_ns != stamp        # other settings: remade


def test_half_written_folder_is_remade(root):
    cfg = load_profile("tiny", root=root)
    folder = corpora.humanml3d_root(cfg, progress=False)
    (folder / corpora.MARKER).unlink()                              # as if interrupted
    (folder / "Mean.npy").unlink()
    corpora.humanml3d_root(cfg, progress=False)
    assert (folder / "Mean.npy").is_file()


def test_fms_corpus_goes_through_the_real_reader_and_alignment(root):
    cfg = load_profile("tiny", root=root)
    folder = corpora.fms_corpus_root(cfg, progress=False)
    for name in ("train.txt", "Mean.npy", "fms_meta.json"):
        assert (folder / name).is_file()
    assert "stand-in" in corpora.describe(cfg)


def test_real_data_root_must_hold_the_datasets(root, tmp_path):
    cfg = load_profile("tiny", data_root=str(tmp_path / "data"), root=root)
    with pytest.raises(FileNotFoundError, match="HumanML3D"):
        corpora.humanml3d_root(cfg)
    with pytest.raises(FileNotFoundError, match="FMS"):
        corpora.fms_raw_root(cfg)


def test_only_fmsnbs_own_temporaries_are_swept(tmp_path):
    folder = tmp_path / "data"
    users = tmp_path / ".data.keep"                                 # the user's, beside it
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    killed = tmp_path / f".data{atomic.TEMP_MARK}killed"            # a killed run's temporary
    killed.mkdir()
    corpora.made(folder, {"v": 1}, lambda tmp: (tmp / "a.txt").write_text("a"))
    corpora.made(folder, {"v": 2}, lambda tmp: (tmp / "b.txt").write_text("b"))   # replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.keep", "data"]
    assert (users / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == [corpora.MARKER, "b.txt"]
