import shutil

import numpy as np
import pytest
import torch

from fmsnb import dataset as ds
from fmsnb.dataset import Caption
from fmsnb.humanml3d import FEATURE_GROUPS


def feats(rng, n):
    return rng.normal(size=(n, 263)).astype(np.float32)


def joints(rng, n):
    return rng.normal(size=(n, 22, 3))


WALK = Caption("a person walks", ["a/DET", "person/NOUN", "walk/VERB"])
JUMP = Caption("a person jumps", ["a/DET", "person/NOUN", "jump/VERB"])


def timed(start, end, text="they turn"):
    return Caption(text, ["they/PRON", "turn/VERB"], start, end)


def layout(root, clips, split="train", seed=0):
    """Write clips {name: (n_frames, captions)} with random features, the split and Mean/Std."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (n, captions) in clips.items():
        out[name] = feats(rng, n)
        ds.write_clip(root, name, out[name], joints(rng, n), captions)
    ds.write_splits(root, {split: list(clips)})
    ds.write_mean_std(root, list(clips))
    return out


def test_write_read_round_trip(tmp_path):
    f = layout(tmp_path, {"a": (60, [WALK, JUMP]), "b": (120, [JUMP])})
    assert (tmp_path / "train.txt").read_text().split() == ["a", "b"]
    assert np.load(tmp_path / "new_joints/a.npy").dtype == np.float32
    assert (tmp_path / "texts/a.txt").read_text().splitlines()[0] == \
        "a person walks#a/DET person/NOUN walk/VERB#0.0#0.0"
    data = ds.read_split(tmp_path, "train", progress=False)
    assert [i.name for i in data.items] == ["a", "b"]
    np.testing.assert_array_equal(data.items[0].motion, f["a"])
    assert data.items[0].captions == [WALK, JUMP]
    assert data.summary == {"names": 2, "items": 2, "whole_clips": 2, "sub_clips": 0,
                            "skipped": 0, "filtered": 0}
    mean, std = ds.read_mean_std(tmp_path)
    np.testing.assert_array_equal(data.mean, mean)
    np.testing.assert_array_equal(data.std, std)


def test_timed_captions_make_sub_clips(tmp_path):
    f = layout(tmp_path, {"a": (150, [WALK, timed(1.0, 4.0)]), "b": (150, [timed(0.5, 3.05)])})
    data = ds.read_split(tmp_path, "train", progress=False)
    by_name = {i.name: i for i in data.items}
    assert sorted(by_name) == ["a", "a[20:80]", "b[10:61]"]  # b has no whole-clip caption
    np.testing.assert_array_equal(by_name["a[20:80]"].motion, f["a"][20:80])
    np.testing.assert_array_equal(by_name["b[10:61]"].motion, f["b"][10:61])
    assert by_name["a"].span is None and by_name["a[20:80]"].span == (20, 80)
    assert by_name["a"].captions == [WALK]
    assert by_name["a[20:80]"].captions == [timed(1.0, 4.0)]
    assert data.summary["sub_clips"] == 2


def test_length_filter_40_to_199(tmp_path):
    clips = {"n39": (39, [WALK]), "n40": (40, [WALK]), "n199": (199, [WALK]), "n200": (200, [WALK]),
             # sub-clips: 30 frames dropped, 40 kept
             "subs": (150, [timed(0.0, 1.5), timed(1.0, 3.0)]),
             # the whole-clip length check comes first: a long clip loses its sub-clips too
             "long": (240, [WALK, timed(1.0, 5.0)])}
    layout(tmp_path, clips)
    data = ds.read_split(tmp_path, "train", progress=False)
    assert [i.name for i in data.items] == ["n40", "n199", "subs[20:60]"]
    filtered = {p.split("new_joint_vecs/")[1]: r for p, r in data.filtered}
    assert filtered == {"n39.npy": "39 frames", "n200.npy": "200 frames",
                        "subs.npy[0:30]": "30 frames", "long.npy": "240 frames"}
    assert data.summary["filtered"] == 4 and data.summary["skipped"] == 0


def test_crop_normalise_pad_and_mask(tmp_path):
    f = layout(tmp_path, {"a": (45, [WALK, JUMP]), "b": (199, [JUMP])})
    data = ds.read_split(tmp_path, "train", progress=False)
    dset = ds.MotionDataset(data, seed=3)
    lengths = {"a": set(), "b": set()}
    for _ in range(30):
        for index, name in enumerate("ab"):
            item = dset[index]
            n = item["length"]
            lengths[name].add(n)
            assert item["motion"].shape == (ds.MAX_LEN, 263) and item["motion"].dtype == torch.float32
            assert n % 4 == 0
            assert torch.all(item["motion"][n:] == 0)
            # the valid frames are one contiguous window of the clip, normalised
            window = item["motion"][:n].numpy() * data.std + data.mean
            starts = [s for s in range(len(f[name]) - n + 1)
                      if np.allclose(f[name][s:s + n], window, atol=1e-5)]
            assert len(starts) == 1
            assert item["caption"] in {c.text for c in data.items[index].captions}
    # multiples of 4 below the clip length: the full units, or one unit fewer
    assert lengths == {"a": {44, 40}, "b": {196, 192}}


def test_random_choices_are_reproducible(tmp_path):
    layout(tmp_path, {"a": (120, [WALK, JUMP, timed(0.0, 0.0, "whole too")])})
    data = ds.read_split(tmp_path, "train", progress=False)

    def draws(seed):
        d = ds.MotionDataset(data, seed=seed)
        return [(x["caption"], x["length"], x["motion"].sum().item()) for x in (d[0] for _ in range(20))]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert len({c for c, _, _ in draws(1)}) > 1  # the caption choice is random


def test_mean_std_group_averaging():
    rng = np.random.default_rng(0)
    clips = [feats(rng, n) * rng.uniform(0.1, 3, size=263) + 5 for n in (50, 70, 33)]
    clips = [c.copy() for c in clips]
    for c in clips:
        c[:, 259:263] = 1.0  # constant contacts: zero std
    mean, std = ds.mean_std(iter(clips))  # a generator is fine
    allf = np.concatenate(clips).astype(np.float64)
    np.testing.assert_allclose(mean, allf.mean(axis=0), atol=1e-5)
    plain = allf.std(axis=0)
    for name, group in FEATURE_GROUPS.items():
        expected = 1.0 if name == "foot contacts" else plain[group].mean()
        np.testing.assert_allclose(std[group], expected, rtol=1e-5)
    assert mean.dtype == std.dtype == np.float32
    with pytest.raises(ValueError, match="features #1"):
        ds.mean_std([clips[0], clips[1][:, :262]])


def test_write_mean_std_files(tmp_path):
    f = layout(tmp_path, {"a": (50, [WALK]), "b": (60, [WALK])})
    mean, std = ds.mean_std(f.values())
    np.testing.assert_array_equal(np.load(tmp_path / "Mean.npy"), mean)
    np.testing.assert_array_equal(np.load(tmp_path / "Std.npy"), std)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        ds.write_mean_std(tmp_path, ["a", "missing"])


def test_mean_std_from_another_folder(tmp_path):
    layout(tmp_path / "big", {"a": (50, [WALK])}, seed=1)
    layout(tmp_path / "small", {"b": (60, [WALK])}, seed=2)
    mean, std = ds.read_mean_std(tmp_path / "big")
    data = ds.read_split(tmp_path / "small", "train", mean=mean, std=std, progress=False)
    np.testing.assert_array_equal(data.std, std)
    assert not np.array_equal(data.std, ds.read_mean_std(tmp_path / "small")[1])
    with pytest.raises(ValueError, match="both mean and std"):
        ds.read_split(tmp_path / "small", "train", mean=mean, progress=False)
    with pytest.raises(ValueError, match="non-positive"):
        ds.read_split(tmp_path / "small", "train", mean=mean, std=std * 0, progress=False)


def test_read_captions(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a man runs#a/DET man/NOUN run/VERB#nan#nan\n\nhe stops#he/PRON stop/VERB#1.5#3\n")
    caps = ds.read_captions(path)
    assert caps == [Caption("a man runs", ["a/DET", "man/NOUN", "run/VERB"]),
                    Caption("he stops", ["he/PRON", "stop/VERB"], 1.5, 3.0)]
    path.write_text("ok#ok/ADJ#0.0#0.0\nbroken#x/NOUN#0.0\n")
    with pytest.raises(ValueError, match=r"x\.txt, line 2: expected 4"):
        ds.read_captions(path)
    path.write_text("bad#x/NOUN#soon#0.0\n")
    with pytest.raises(ValueError, match=r"x\.txt, line 1: .* not numbers"):
        ds.read_captions(path)


def test_bad_inputs_are_skipped_counted_and_reported(tmp_path):
    rng = np.random.default_rng(0)
    f = layout(tmp_path, {n: (60, [WALK]) for n in ("good", "malformed", "badstart", "shape",
                                                      "nan", "notext")})
    (tmp_path / "texts/malformed.txt").write_text("a person walks#a/DET#0.0\n")
    (tmp_path / "texts/badstart.txt").write_text("ok#ok/ADJ#0.0#0.0\nx#x/NOUN#one#2.0\n")
    np.save(tmp_path / "new_joint_vecs/shape.npy", feats(rng, 60)[:, :200])
    nan = f["nan"].copy()
    nan[5, 7] = np.nan
    np.save(tmp_path / "new_joint_vecs/nan.npy", nan)
    (tmp_path / "texts/notext.txt").unlink()
    names = (tmp_path / "train.txt").read_text() + "absent\ngood\n"
    (tmp_path / "train.txt").write_text(names)

    data = ds.read_split(tmp_path, "train", progress=False)
    assert [i.name for i in data.items] == ["good"]
    reasons = {p.replace(str(tmp_path) + "/", ""): r for p, r in data.skipped}
    assert set(reasons) == {"texts/malformed.txt", "texts/badstart.txt", "new_joint_vecs/shape.npy",
                            "new_joint_vecs/nan.npy", "texts/notext.txt",
                            "new_joint_vecs/absent.npy", "train.txt"}
    assert reasons["texts/malformed.txt"].startswith("line 1: expected 4")
    assert reasons["texts/badstart.txt"].startswith("line 2:")
    assert "shape" in reasons["new_joint_vecs/shape.npy"]
    assert "NaN" in reasons["new_joint_vecs/nan.npy"]
    assert reasons["new_joint_vecs/absent.npy"] == "file not found"
    assert reasons["train.txt"] == "good listed more than once"
    assert data.summary["skipped"] == 7 and data.summary["names"] == 8
    report = data.report()
    assert "7 skipped" in report
    for path, reason in data.skipped:
        assert f"{path}: {reason}" in report


def test_missing_split_or_stats_is_an_error(tmp_path):
    layout(tmp_path, {"a": (50, [WALK])})
    with pytest.raises(FileNotFoundError, match="val.txt"):
        ds.read_split(tmp_path, "val", progress=False)
    (tmp_path / "Std.npy").unlink()
    with pytest.raises(FileNotFoundError, match="Std.npy"):
        ds.read_split(tmp_path, "train", progress=False)


@pytest.mark.parametrize("change, message", [
    (dict(features=np.zeros((50, 262))), r"features must have shape \(T, 263\)"),
    (dict(joints=np.zeros((49, 22, 3))), r"joints must have shape \(50, 22, 3\)"),
    (dict(features=np.full((50, 263), np.nan)), "features contain NaN"),
    (dict(joints=np.full((50, 22, 3), np.inf)), "joints contain NaN"),
    (dict(captions=[]), "at least one caption"),
    (dict(captions=[Caption("a # b", ["a/DET"])]), "without '#'"),
    (dict(captions=[Caption("walks", ["walks"])]), "'word/POS' tokens"),
    (dict(captions=[timed(0.5, 2.0), timed(2.0, 1.0)]), "need 0 <= start < end"),
    (dict(captions=[timed(1.0, 2.6)]), "beyond the clip's 50 frames"),
    (dict(name="../x"), "clip name"),
])
def test_write_clip_rejects_bad_input(tmp_path, change, message):
    args = dict(name="clip7", features=np.zeros((50, 263)), joints=np.zeros((50, 22, 3)),
                captions=[WALK]) | change
    with pytest.raises(ValueError, match=message) as err:
        ds.write_clip(tmp_path, args["name"], args["features"], args["joints"], args["captions"])
    assert repr(args["name"]) in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_real_clip_with_real_normalisation(tmp_path, shared_data):
    real = shared_data / "humanml3d"
    features = np.load(real / "new_joint_vecs/012314.npy")
    ds.write_clip(tmp_path, "012314", features, np.load(real / "new_joints/012314.npy"),
                  [WALK, timed(1.0, 5.0)])
    ds.write_splits(tmp_path, {"test": ["012314"]})
    shutil.copy(real / "Mean.npy", tmp_path)
    shutil.copy(real / "Std.npy", tmp_path)
    data = ds.read_split(tmp_path, "test", progress=False)
    assert [i.name for i in data.items] == ["012314", "012314[20:100]"]
    np.testing.assert_array_equal(data.items[0].motion, features)
    np.testing.assert_array_equal(data.std, np.load(real / "Std.npy"))
    dset = ds.MotionDataset(data, seed=0)
    item = dset[0]
    assert item["length"] in (168, 164)
    window = item["motion"][: item["length"]].numpy() * data.std + data.mean   # back to units
    assert any(np.allclose(window, features[s:s + item["length"]], atol=1e-4)
               for s in range(170 - item["length"] + 1))
    # HumanML3D's own Std is group-constant, as mean_std makes it
    for group in FEATURE_GROUPS.values():
        assert np.unique(data.std[group]).size == 1


def test_infinite_caption_times_are_a_counted_skip(tmp_path):
    # issue 11, defect 6: `#inf#inf` made the sub-clip frame computation an OverflowError
    layout(tmp_path, {"good": (60, [WALK]), "endless": (60, [WALK])})
    (tmp_path / "texts/endless.txt").write_text("they turn#they/PRON turn/VERB#inf#inf\n")
    data = ds.read_split(tmp_path, "train", progress=False)
    assert [i.name for i in data.items] == ["good"]
    assert data.skipped == [(str(tmp_path / "texts/endless.txt"),
                             "line 1: start/end 'inf'/'inf' must be finite")]


def test_split_joints_skips_broken_files(tmp_path):
    (tmp_path / "new_joints").mkdir()
    (tmp_path / "test.txt").write_text("good\nshort\nnan\nmissing\n")
    np.save(tmp_path / "new_joints" / "good.npy", np.zeros((10, 22, 3)))
    np.save(tmp_path / "new_joints" / "short.npy", np.zeros((2, 22, 3)))
    bad = np.zeros((10, 22, 3))
    bad[3] = np.nan
    np.save(tmp_path / "new_joints" / "nan.npy", bad)
    joints, skipped = ds.split_joints(tmp_path, "test")
    assert len(joints) == 1 and joints[0].shape == (10, 22, 3)
    reasons = {p.rsplit("/", 1)[1]: r for p, r in skipped}
    assert set(reasons) == {"short.npy", "nan.npy", "missing.npy"}
    assert "NaN" in reasons["nan.npy"] and "unreadable" in reasons["missing.npy"]
    with pytest.raises(FileNotFoundError, match="val.txt"):
        ds.split_joints(tmp_path, "val")
