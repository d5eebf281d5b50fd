from pathlib import Path

import numpy as np
import pytest

from fmsnb import dataset, humanml3d
from fmsnb.pos import tag
from fmsnb.standin import actions


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("standin")
    summary = actions.write(root, clips_per_action=1, seed=3, progress=False)
    return root, summary


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_layout_is_complete_and_readable(corpus):
    root, summary = corpus
    names = sorted(p.stem for p in (root / "new_joint_vecs").glob("*.npy"))
    assert len(names) == len(actions.ACTIONS) == summary["clips"]
    assert sorted(p.stem for p in (root / "new_joints").glob("*.npy")) == names
    assert sorted(p.stem for p in (root / "texts").glob("*.txt")) == names
    splits = {s: (root / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert all(splits.values())                                  # none empty, even here
    assert sorted(sum(splits.values(), [])) == names             # disjoint and complete
    assert summary["splits"] == {s: len(v) for s, v in splits.items()}
    mean, std = dataset.read_mean_std(root)
    assert mean.shape == std.shape == (humanml3d.N_FEATURES,) and (std > 0).all()
    train = (np.load(root / "new_joint_vecs" / f"{n}.npy") for n in splits["train"])
    expected, _ = dataset.mean_std(train)
    np.testing.assert_allclose(mean, expected, rtol=1e-6)
    for split in splits:
        data = dataset.read_split(root, split, progress=False)
        assert not data.skipped


def test_clips_are_valid_humanml3d(corpus):
    root, summary = corpus
    frames = 0
    for path in sorted((root / "new_joint_vecs").glob("*.npy")):
        features = np.load(path)
        joints = np.load(root / "new_joints" / path.name)
        assert features.dtype == np.float32 and np.isfinite(features).all()
        assert 40 <= len(features) <= 199 and features.shape[1] == humanml3d.N_FEATURES
        # new_joints is the recovery of the features, as in the released files.
        np.testing.assert_array_equal(joints, humanml3d.recover_joints(features))
        assert joints[..., 1].min() > -1e-4                      # nobody under the floor
        frames += len(features)
    assert frames == summary["frames"]


def test_captions_parse_and_tag(corpus):
    root, _ = corpus
    for path in sorted((root / "texts").glob("*.txt")):
        captions = dataset.read_captions(path)
        assert 2 <= len(captions) <= 3
        assert len({c.text for c in captions}) == len(captions)
        for c in captions:
            assert c.tokens == tag(c.text) and c.whole_clip
    walk = dataset.read_captions(root / "texts" / "walk_000.txt")
    assert any("walk" in c.text for c in walk)


def test_readme_labels_the_stand_in(corpus):
    root, summary = corpus
    text = (root / "README.txt").read_text()
    assert text.startswith(actions.LABEL)
    assert "NOT HumanML3D" in text and f"clips: {summary['clips']}" in text


def test_deterministic_for_a_seed(corpus, tmp_path):
    root, _ = corpus
    actions.write(tmp_path / "again", clips_per_action=1, seed=3, progress=False)
    assert _files(root) == _files(tmp_path / "again")
    joints, _ = actions.make_clip("squat", seed=4, index=0)
    other, _ = actions.make_clip("squat", seed=5, index=0)
    assert joints.shape != other.shape or not np.allclose(joints, other)


def test_regenerating_replaces_a_stand_in_but_not_other_folders(tmp_path):
    out = tmp_path / "corpus"
    actions.write(out, clips_per_action=1, progress=False)
    (out / "texts" / "stale.txt").write_text("old#old/ADJ#0.0#0.0\n")
    (out / "Mean.npy").unlink()                                  # as if interrupted
    actions.write(out, clips_per_action=1, progress=False)
    assert not (out / "texts" / "stale.txt").exists() and (out / "Mean.npy").is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="foreign"):
        actions.write(foreign, clips_per_action=1, progress=False)
    with pytest.raises(ValueError, match="clips_per_action"):
        actions.write(tmp_path / "x", clips_per_action=0, progress=False)
    with pytest.raises(ValueError, match="unknown stand-in action"):
        actions.make_clip("backflip", 0, 0)


def test_mirrored_copies(tmp_path):
    summary = actions.write(tmp_path, clips_per_action=1, seed=1, mirror=True, progress=False)
    assert summary["clips"] == 2 * len(actions.ACTIONS)
    for split in ("train", "val", "test"):
        names = (tmp_path / f"{split}.txt").read_text().split()
        assert sorted(n for n in names if n.startswith("M")) == sorted("M" + n for n in names
                                                                      if not n.startswith("M"))
    for name in ("wave_000", "kick_000"):
        texts = [c.text for c in dataset.read_captions(tmp_path / "texts" / f"{name}.txt")]
        mirrored = dataset.read_captions(tmp_path / "texts" / f"M{name}.txt")
        assert [c.text for c in mirrored] == [humanml3d.mirror_caption(t) for t in texts]
        assert all(c.tokens == tag(c.text) for c in mirrored)
        joints = np.load(tmp_path / "new_joints" / f"{name}.npy")
        mirror = np.load(tmp_path / "new_joints" / f"M{name}.npy")
        # Processing retargets to the (slightly asymmetric) target skeleton: equal to a few cm.
        assert np.abs(humanml3d.mirror_joints(joints) - mirror).max() < 0.06


def test_splits_are_about_80_5_15_within_each_action():
    names = {a: [f"{a}_{i:03d}" for i in range(24)] for a in actions.ACTIONS}
    splits = actions.split_names(names, seed=0)
    total = sum(map(len, names.values()))
    assert sorted(sum(splits.values(), [])) == sorted(sum(names.values(), []))
    for split, share in actions.SPLITS:
        assert abs(len(splits[split]) / total - share) < 0.02, split
    for action in actions.ACTIONS:
        assert any(n.startswith(action) for n in splits["train"])
        assert any(n.startswith(action) for n in splits["test"])
    assert actions.split_names(names, seed=0) == splits


def test_actions_vary_and_name_their_side():
    sides = set()
    for index in range(6):
        joints, texts = actions.make_clip("wave", seed=0, index=index)
        raised = joints[:, 20, 1].max() - joints[:, 21, 1].max()   # left minus right wrist
        said = {s for s in ("left", "right", "both") if any(s in t for t in texts)}
        if said == {"left"}:
            assert raised > 0.3
        elif said == {"right"}:
            assert raised < -0.3
        sides |= said
    assert {"left", "right"} <= sides
