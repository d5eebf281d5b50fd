"""Reading the FMS dataset: file names, skeleton JSON, expert scores and the paired dataset."""
import json
import math

import numpy as np
import pytest

from fmsnb.fms import (ESSENTIAL_JOINTS, KINECT_JOINTS, KINECT_PARENTS, MOVEMENTS, FMSDataset,
                       consolidate, parse_file_name, read_expert_scores, read_recording,
                       skip_counts)

NAME = "front_s01_m01_20210522141451_e1.json"


def body(t, confidence=2, n_joints=32):
    """A body whose joint j sits at (j, 10 t, 2500) mm."""
    return {"joint_positions": [[float(j), 10.0 * t, 2500.0] for j in range(n_joints)],
            "joint_orientations": [[1.0, 0.0, 0.0, 0.0]] * n_joints,
            "joint_position_2d_color": [[640.0, 360.0]] * n_joints,
            "confidence_level": [confidence] * n_joints}


def skeleton(n=5, empty=()):
    frames = [{"num_bodies": 0 if t in empty else 1, "timestamp_usec": 1_000_000 + 33_333 * t,
               "bodies": [] if t in empty else [body(t)]} for t in range(n)]
    return {"total_frames": n, "frames": frames, "original_frmae_num": list(range(10, 10 + n))}


def write(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_tables():
    assert sorted(MOVEMENTS) == [f"m{i:02d}" for i in range(1, 16)]
    assert len({m.test for m in MOVEMENTS.values()}) == 7
    for code, m in MOVEMENTS.items():
        assert MOVEMENTS[m.mirror].mirror == code
    assert [c for c, m in MOVEMENTS.items() if m.mirror == c] == ["m01", "m02", "m11"]
    assert len(KINECT_JOINTS) == len(KINECT_PARENTS) == 32
    assert all(p < j for j, p in enumerate(KINECT_PARENTS))


def test_parse_file_name():
    name = parse_file_name("x/side_s45_m15_20210522141451_e3.json")
    assert (name.view, name.subject, name.movement, name.episode) == ("side", "s45", "m15", 3)
    for bad in ("top_s01_m01_20210522141451_e1.json", "front_s1_m01_20210522141451_e1.json",
                "front_s01_m01_2021052214_e1.json", "front_s01_m01_20210522141451_e1.txt"):
        with pytest.raises(ValueError, match="bad file name"):
            parse_file_name(bad)
    with pytest.raises(ValueError, match="unknown movement code 'm16'"):
        parse_file_name("front_s01_m16_20210522141451_e1.json")


def test_read_recording(tmp_path):
    rec = read_recording(write(tmp_path / NAME, skeleton(5, empty=(2,))))
    assert (rec.view, rec.subject, rec.movement, rec.episode) == ("front", "s01", "m01", 1)
    assert rec.joints.shape == (5, 32, 3) and rec.confidence.shape == (5, 32)
    np.testing.assert_allclose(rec.timestamps, 1.0 + 0.033333 * np.arange(5))
    np.testing.assert_array_equal(rec.source_frames, np.arange(10, 15))
    # The no-body frame is invalid, NaN and confidence 0; the others hold what was written.
    np.testing.assert_array_equal(rec.valid, [True, True, False, True, True])
    assert np.isnan(rec.joints[2]).all() and (rec.confidence[2] == 0).all()
    np.testing.assert_array_equal(rec.joints[3, :, 0], np.arange(32))
    assert (rec.joints[3, :, 1] == 30).all()


def test_confidence_threshold(tmp_path):
    data = skeleton(4)
    data["frames"][1]["bodies"][0]["confidence_level"][ESSENTIAL_JOINTS[3]] = 0
    data["frames"][2]["bodies"][0]["confidence_level"][KINECT_JOINTS.index("EAR_LEFT")] = 0
    path = write(tmp_path / NAME, data)
    # An undetected essential joint invalidates its frame; a face joint does not.
    np.testing.assert_array_equal(read_recording(path).valid, [True, False, True, True])
    with pytest.raises(ValueError, match="no valid frame"):
        read_recording(path, min_confidence=3)


def test_nan_coordinates_make_the_frame_invalid(tmp_path):
    text = json.dumps(skeleton(3))
    data = json.loads(text)
    data["frames"][1]["bodies"][0]["joint_positions"][4][2] = None
    data["frames"][2]["bodies"][0]["joint_positions"][0][0] = math.nan
    rec = read_recording(write(tmp_path / NAME, json.dumps(data)))
    np.testing.assert_array_equal(rec.valid, [True, False, False])
    assert np.isfinite(rec.joints[rec.valid]).all()


@pytest.mark.parametrize("content, message", [
    (json.dumps(skeleton(3))[:-40], "not a valid JSON file"),
    ("this is not json", "not a valid JSON file"),
    (json.dumps({"frames": skeleton(3)["frames"]}), r"misses key\(s\) \['total_frames', "
                                                    r"'original_frmae_num'\]"),
    (json.dumps({**skeleton(3), "total_frames": 4}), "total_frames is 4"),
    (json.dumps(skeleton(3, empty=(0, 1, 2))), "no frame has a body"),
])
def test_bad_files(tmp_path, content, message):
    path = write(tmp_path / NAME, content)
    with pytest.raises(ValueError, match=message) as err:
        read_recording(path)
    assert str(path) in str(err.value)


def test_bad_bodies(tmp_path):
    data = skeleton(3)
    data["frames"][1]["bodies"][0] = body(1, n_joints=31)
    with pytest.raises(ValueError, match="frame 1: body has 31 joints, expected 32"):
        read_recording(write(tmp_path / NAME, data))
    data = skeleton(3)
    data["frames"][2]["bodies"][0]["joint_positions"][5] = [1.0, 2.0]
    with pytest.raises(ValueError, match="frame 2 joint 5: expected 3 coordinates"):
        read_recording(write(tmp_path / NAME, data))
    data = skeleton(3)
    del data["frames"][0]["bodies"][0]["confidence_level"]
    with pytest.raises(ValueError, match=r"frame 0 body 0 misses key\(s\) \['confidence_level'"):
        read_recording(write(tmp_path / NAME, data))
    data = skeleton(3)
    data["frames"][0]["bodies"][0]["confidence_level"][0] = 7
    with pytest.raises(ValueError, match="frame 0: confidence_level values must be integers"):
        read_recording(write(tmp_path / NAME, data))


def test_bad_names_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown movement code"):
        read_recording(write(tmp_path / "front_s01_m00_20210522141451_e1.json", skeleton()))
    with pytest.raises(ValueError, match="bad file name"):
        read_recording(write(tmp_path / "s01_m01.json", skeleton()))
    with pytest.raises(FileNotFoundError, match=NAME):
        read_recording(tmp_path / NAME)


SCORES = {
    "s01": {"m01": {"e1": [2, 2, 3], "e2": [1, 2, 3], "e3": [3, 3, 3]},
            "m03": {"e1": [1, 1, 2], "e2": [2, 3, 3]}},
    "s02": {"m01": {"e1": [2, 0, 2], "e2": [2, 2], "e3": ["2", 2, 2], "x": [2, 2, 2]},
            "m99": {"e1": [2, 2, 2]}},
}


def test_consolidate():
    raw = np.array([[2, 2, 3], [1, 2, 3], [3, 3, 3], [1, 1, 2], [2, 3, 3], [1, 3, 3]])
    np.testing.assert_array_equal(consolidate(raw, "majority"), [2, 0, 3, 1, 3, 3])
    # Means 2.33, 2, 3, 1.33, 2.67, 2.33 rounded half up.
    np.testing.assert_array_equal(consolidate(raw, "mean"), [2, 2, 3, 1, 3, 2])
    with pytest.raises(ValueError, match="unknown grade policy"):
        consolidate(raw, "median")


def test_expert_scores_policies(tmp_path):
    path = write(tmp_path / "experts_score.json", SCORES)
    major = read_expert_scores(path, "majority")
    mean = read_expert_scores(path, "mean")
    assert major.raw == mean.raw and major.raw[("s01", "m01", 2)] == (1, 2, 3)
    assert len(major.raw) == 5
    assert major.dropped == [("s01", "m01", 2)] and mean.dropped == []
    assert major.grade("s01", "m01", 2) is None and mean.grade("s01", "m01", 2) == 2
    assert major.grade("s01", "m01", 1) == 2 and major.grade("s01", "m03", 2) == 3
    assert major.counts() == {1: 1, 2: 1, 3: 2} and mean.counts() == {1: 1, 2: 2, 3: 2}
    # Bad entries are skipped with subject, movement and episode named.
    reasons = dict(major.skipped)
    assert set(reasons) == {"s02 m01 e1", "s02 m01 e2", "s02 m01 e3", "s02 m01 x", "s02 m99"}
    assert "in 1..3" in reasons["s02 m01 e1"] and "three grades" in reasons["s02 m01 e2"]
    assert "integers" in reasons["s02 m01 e3"]


def test_expert_scores_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="experts_score.json"):
        read_expert_scores(tmp_path / "experts_score.json")
    path = write(tmp_path / "experts_score.json", json.dumps(SCORES)[:30])
    with pytest.raises(ValueError, match=f"{path}: not a valid JSON"):
        read_expert_scores(path)
    with pytest.raises(ValueError, match="unknown grade policy"):
        read_expert_scores(write(path, SCORES), "vote")


def make_root(tmp_path):
    front = tmp_path / "Skeleton data" / "Front"
    side = tmp_path / "Skeleton data" / "Side"
    front.mkdir(parents=True)
    side.mkdir(parents=True)
    for s, m, e in [("s01", "m01", 1), ("s01", "m01", 2), ("s01", "m01", 3), ("s01", "m03", 1),
                    ("s01", "m03", 2), ("s01", "m03", 3)]:
        for view, folder in (("front", front), ("side", side)):
            if (view, e, m) != ("side", 1, "m03"):
                write(folder / f"{view}_{s}_{m}_20210522141451_e{e}.json", skeleton(3))
    write(front / "front_s01_m05_20210522141451_e1.json", json.dumps(skeleton(3))[:50])
    write(front / "notes.json", "{}")
    write(tmp_path / "experts_score.json", SCORES)
    return tmp_path


def test_dataset(tmp_path):
    root = make_root(tmp_path)
    ds = FMSDataset(root, progress=False)
    keys = [(e.subject, e.movement, e.episode) for e in ds]
    assert keys == [("s01", "m01", 1), ("s01", "m01", 3), ("s01", "m03", 1), ("s01", "m03", 2)]
    assert [e.grade for e in ds] == [2, 3, 1, 3] and ds[0].expert_grades == (2, 2, 3)
    assert ds[0].recording.view == "front" and list(ds[0].recordings) == ["front"]
    counts = ds.counts()
    assert counts["grade"] == {1: 1, 2: 1, 3: 2}
    assert counts["movement"]["m01"] == 2 and counts["movement"]["m03"] == 2
    assert counts["movement_grade"]["m03"] == {1: 1, 2: 0, 3: 1}
    skipped = {p.name: r for p, r in ds.skipped}
    assert "not a valid JSON" in skipped["front_s01_m05_20210522141451_e1.json"]
    assert "bad file name" in skipped["notes.json"]
    assert "disagree three ways" in skipped["front_s01_m01_20210522141451_e2.json"]
    assert "no expert grade for s01 m03 e3" in skipped["front_s01_m03_20210522141451_e3.json"]
    assert sum(p.name == "experts_score.json" for p, _ in ds.skipped) == 5
    assert len(ds.skipped) == 9

    both = FMSDataset(root, views=("front", "side"), policy="mean", progress=False)
    # The mean policy keeps the disputed episode; s01 m03 e1 has no side file.
    assert [(e.movement, e.episode) for e in both] == [("m01", 1), ("m01", 2), ("m01", 3),
                                                       ("m03", 2)]
    assert {v: r.view for v, r in both[0].recordings.items()} == {"front": "front",
                                                                  "side": "side"}
    assert "no side recording" in {p.name: r for p, r in both.skipped}[
        "front_s01_m03_20210522141451_e1.json"]


def test_dataset_paths(tmp_path):
    root = make_root(tmp_path)
    moved = tmp_path / "skeleton_data"
    (root / "Skeleton data").rename(moved)
    with pytest.raises(FileNotFoundError, match="no front skeleton folder"):
        FMSDataset(root, progress=False)
    ds = FMSDataset(front_dir=moved / "Front", scores=root / "experts_score.json", progress=False)
    assert len(ds) == 4
    with pytest.raises(ValueError, match="views"):
        FMSDataset(root, views=("top",), progress=False)


def test_bodies_object_and_text_coordinates_name_the_file(tmp_path):
    # issue 11, defect 9: `bodies` as an object was a KeyError, text coordinates were accepted
    data = skeleton(3)
    data["frames"][1]["bodies"] = {"0": body(1)}
    with pytest.raises(ValueError, match="frame 1: 'bodies' must be a list of bodies, got dict"):
        read_recording(write(tmp_path / NAME, data))
    data = skeleton(3)
    data["frames"][2]["bodies"][0]["joint_positions"][4] = ["4.0", "20.0", "2500.0"]
    with pytest.raises(ValueError, match="frame 2 joint 4: coordinates must be numbers"):
        read_recording(write(tmp_path / NAME, data))


def test_skip_counts_group_reasons_that_differ_in_numbers():
    skipped = [(f"/d/front_s0{i}_m01_20210522141451_e1.json",
                f"no expert grade for s0{i} m01 e1 in experts_score.json") for i in range(1, 6)]
    skipped.append(("/d/notes.json", "/d/notes.json: bad file name, expected ..."))
    assert skip_counts(skipped) == [
        "5 x no expert grade for s01 m01 e1 in experts_score.json (front_s01_m01_20210522141451_"
        "e1.json, front_s02_m01_20210522141451_e1.json, front_s03_m01_20210522141451_e1.json "
        "and 2 more)",
        "1 x bad file name, expected ... (notes.json)"]
