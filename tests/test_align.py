"""Kinect -> HumanML3D alignment: skeleton mapping, camera frame, time cleaning, the corpus."""
from pathlib import Path

import numpy as np
import pytest

from fmsnb import align, corpus, dataset
from fmsnb.align import (Alignment, SpineDistances, align_joints, align_recording,
                         camera_rotation, camera_to_world, find_pieces, fit_alignment,
                         kinect_to_humanml, measure_spine, resample, split_subjects)
from fmsnb.captions import movement_captions
from fmsnb.fms import FPS as KINECT_FPS, KINECT_INDEX, MOVEMENTS, FMSDataset, Recording
from fmsnb.humanml3d import (JOINT_NAMES, mirror_caption, process_joints, recover_joints,
                             target_offsets)
from fmsnb.standin.body import BodyShape, pose
from fmsnb.standin import fms_recorder
from fmsnb.standin.fms_recorder import CAMERA_HEIGHT, CAMERAS

H = {name: i for i, name in enumerate(JOINT_NAMES)}
K = KINECT_INDEX


def spine(navel_chest=0.2, chest_neck=0.18):
    return SpineDistances(*align.humanml3d_spine(), fms_navel_chest=navel_chest,
                          fms_chest_neck=chest_neck, fms_frames=1)


def recording(joints_mm, valid=None, timestamps=None, view="front"):
    T = len(joints_mm)
    valid = np.ones(T, bool) if valid is None else np.asarray(valid)
    joints = np.where(valid[:, None, None], joints_mm, np.nan).astype(np.float32)
    return Recording(
        path=Path(f"{view}_s01_m01_20210522141451_e1.json"), view=view, subject="s01",
        movement="m01", episode=1, acquired="20210522141451",
        timestamps=np.arange(T) / KINECT_FPS + 12.5 if timestamps is None else timestamps,
        source_frames=np.arange(T), joints=joints,
        confidence=np.where(valid[:, None], 2, 0).astype(np.int8), valid=valid)


def standing_kinect_mm(view="front", spots=((0.0, 0.0),), shape=BodyShape()):
    """The stand-in body standing at floor spots (x, z) facing +Z (the front camera), as seen
    by the stand-in's camera `view`: Kinect joints (S, 32, 3) in mm, camera frame."""
    kp = pose(shape, root=np.array([[x, shape.pelvis_height, z] for x, z in spots]))
    return CAMERAS[view].to_camera(kp.kinect32())


# ---------------------------------------------------------------- skeleton

def test_humanml3d_spine_lengths_come_from_the_target_skeleton(shared_data):
    raw = np.load(shared_data / "humanml3d" / "000021_raw_joints.npy")[0, :22]
    measured = [np.linalg.norm(raw[a] - raw[b]) for a, b in ((6, 3), (9, 6), (12, 9))]
    np.testing.assert_allclose(align.humanml3d_spine(), measured, rtol=1e-6)
    assert align.humanml3d_spine() == tuple(np.linalg.norm(target_offsets()[[6, 9, 12]], axis=1))


def test_humanml3d_navel_reference_is_the_released_clips_mean(shared_data):
    joints = np.load(shared_data / "humanml3d" / "new_joints" / "012314.npy")
    np.testing.assert_allclose(align.HUMANML3D_SPINE1_MEAN, joints[:, H["spine1"]].mean(0),
                               atol=1e-6)


def test_direct_joints_are_copied_and_spine_is_interpolated_on_the_navel_chest_line():
    rng = np.random.default_rng(0)
    kinect = rng.normal(size=(7, 32, 3))
    s = spine(navel_chest=0.3)
    hml = kinect_to_humanml(kinect, s)
    assert hml.shape == (7, 22, 3)
    for h, k in align.DIRECT.items():
        np.testing.assert_array_equal(hml[:, H[h]], kinect[:, K[k]])
    navel, chest = kinect[:, K["SPINE_NAVEL"]], kinect[:, K["SPINE_CHEST"]]
    u = (chest - navel) / np.linalg.norm(chest - navel, axis=1, keepdims=True)
    d1, d2, _ = align.humanml3d_spine()
    for joint, dist in (("spine2", 0.3 * d1 / (d1 + d2)), ("spine3", 0.3)):
        offset = hml[:, H[joint]] - navel
        np.testing.assert_allclose(offset, dist * u, atol=1e-12)      # on the line, at dist
    assert s.spine2_distance == pytest.approx(0.3 * d1 / (d1 + d2))
    assert s.spine3_distance == pytest.approx(0.3)
    assert set(align.DROPPED) == {"HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT", "HAND_RIGHT",
                                  "HANDTIP_RIGHT", "THUMB_RIGHT", "NOSE", "EYE_LEFT",
                                  "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT"}


def test_measure_spine_takes_mean_distances_in_metres():
    kinect = np.zeros((2, 32, 3))
    kinect[:, K["SPINE_CHEST"], 1] = [-200.0, -300.0]          # mm, camera Y down
    kinect[:, K["NECK"], 1] = kinect[:, K["SPINE_CHEST"], 1] - 100.0
    s = measure_spine([kinect[:1], kinect[1:]])
    assert s.fms_navel_chest == pytest.approx(0.25) and s.fms_chest_neck == pytest.approx(0.1)
    assert s.fms_frames == 2
    with pytest.raises(ValueError, match="at least one"):
        measure_spine([])


# ---------------------------------------------------------------- space

def test_camera_rotation_is_a_proper_rotation():
    for tilt in (0.0, 6.0):
        r = camera_rotation(tilt)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
    # Untilted: Y down -> Y up and Z away -> Z towards the camera; x kept; mm -> m.
    np.testing.assert_allclose(camera_to_world([1000.0, 2000.0, 3000.0], 0.0), [1.0, -2.0, -3.0])


@pytest.mark.parametrize("tilt, ok", [(align.TILT_DEG, True), (-align.TILT_DEG, False)])
def test_tilt_is_undone_floor_level_and_body_upright(tilt, ok):
    # Standing at spots from 1.3 m to 3.8 m from the front camera and across its view.
    spots = [(x, z) for x in (-0.5, 0.0, 0.5) for z in (1.5, 0.5, -1.0)]
    world = kinect_to_humanml(camera_to_world(standing_kinect_mm("front", spots), tilt), spine())
    feet = world[:, [H["l_foot"], H["r_foot"]], 1]
    up = world[:, H["head"]] - world[:, H["pelvis"]]
    lean = np.degrees(np.arccos(up[:, 1] / np.linalg.norm(up, axis=1)))
    if not ok:      # the opposite sign tilts the floor by 12 degrees: the check has teeth
        assert np.ptp(feet) > 0.3 and lean.min() > 10
        return
    assert np.ptp(feet) < 0.02 and lean.max() < 1.0
    # The floor lies CAMERA_HEIGHT below the camera; the toe point sits 1.4 cm above the sole.
    assert np.abs(feet + CAMERA_HEIGHT - 0.2 * BodyShape().ankle_height).max() < 0.02


@pytest.mark.parametrize("view", ["front", "side"])
def test_standing_pose_faces_plus_z_with_left_at_plus_x_and_feet_on_the_floor(view):
    kinect = standing_kinect_mm(view, [(0.1, -0.1)] * 2)
    s = measure_spine([kinect])
    alignment = Alignment(align.TILT_DEG, s, {view: camera_to_world(
        kinect[:, K["SPINE_NAVEL"]]).mean(0)})
    joints = align_joints(kinect, view, alignment)
    np.testing.assert_allclose(joints[:, H["spine1"]].mean(0), align.HUMANML3D_SPINE1_MEAN)
    across = joints[0, H["r_hip"]] - joints[0, H["l_hip"]]
    forward = np.cross([0.0, 1.0, 0.0], across)
    forward /= np.linalg.norm(forward)
    if view == "front":     # facing the front camera is facing +Z, left hip at +X
        assert forward @ [0.0, 0.0, 1.0] > 0.999
        assert joints[0, H["l_hip"], 0] > joints[0, H["r_hip"], 0]
    else:                   # the side camera sees the left side: the body faces its left (-X)
        assert forward @ [-1.0, 0.0, 0.0] > 0.999
    # Through the HumanML3D processing: on the floor, facing +Z, both feet within 2 cm of y=0.
    recovered = recover_joints(process_joints(joints))
    feet = recovered[:, [H["l_foot"], H["r_foot"]], 1]
    assert np.abs(feet).max() < 0.02
    assert recovered[0, H["l_hip"], 0] > recovered[0, H["r_hip"], 0]
    assert recovered[0, H["head"], 1] > 1.4


# ---------------------------------------------------------------- time

def test_resampling_a_30fps_ramp_is_exact():
    t = 3.0 + np.arange(91) / 30.0                         # 3 s at 30 fps
    values = np.stack([2.0 * t - 1.0, -0.5 * t], axis=-1)[:, None, :]
    grid, out = resample(t, values, fps=20)
    assert len(grid) == 61 and grid[0] == t[0]
    np.testing.assert_allclose(np.diff(grid), 1 / 20)
    np.testing.assert_allclose(out[:, 0, 0], 2.0 * grid - 1.0, atol=1e-12)
    np.testing.assert_allclose(out[:, 0, 1], -0.5 * grid, atol=1e-12)


def test_resampling_uses_the_timestamps_not_the_frame_count():
    t = np.array([0.0, 0.1, 0.15, 0.4])                    # irregular, with a dropped frame
    grid, out = resample(t, 5.0 * t, fps=20)
    np.testing.assert_allclose(out, 5.0 * grid, atol=1e-12)
    assert grid[-1] == pytest.approx(0.4)


def test_short_gaps_are_bridged_and_long_gaps_split():
    t = np.arange(100) / 30.0
    valid = np.ones(100, bool)
    valid[:2] = False                                      # trimmed at the start
    valid[20:26] = False                                   # 6 missing: 7/30 s apart -> filled
    valid[40:42] = False                                   # 2 missing -> filled
    valid[60:68] = False                                   # 8 missing: 9/30 s apart -> split
    valid[-3:] = False                                     # trimmed at the end
    pieces = find_pieces(t, valid)
    assert len(pieces) == 2
    assert (pieces[0].frames[0], pieces[0].frames[-1]) == (2, 59)
    assert (pieces[0].filled_frames, pieces[0].filled_gaps) == (8, 2)
    assert (pieces[1].frames[0], pieces[1].frames[-1]) == (68, 96)
    assert (pieces[1].filled_frames, pieces[1].filled_gaps) == (0, 0)
    # The threshold is inclusive, in seconds between the valid frames around a gap.
    assert len(find_pieces(np.array([0.0, 0.25, 0.5]), np.ones(3, bool))) == 1
    assert len(find_pieces(np.array([0.0, 0.2501, 0.5]), np.ones(3, bool))) == 2
    with pytest.raises(ValueError, match="increase"):
        find_pieces(np.array([0.0, 0.1, 0.1]), np.ones(3, bool), where="x.json")


def test_align_recording_interpolates_gaps_splits_and_drops_short_pieces():
    T = 150                                                 # 5 s at 30 fps
    pose_mm = standing_kinect_mm("front")[0]
    drift = np.linspace(0.0, 300.0, T)                      # walks 30 cm along camera X
    joints = pose_mm[None] + drift[:, None, None] * np.array([1.0, 0.0, 0.0])
    valid = np.ones(T, bool)
    valid[30:35] = False                                    # short gap: filled
    valid[100:112] = False                                  # long gap: split; 38 frames after
    rec = recording(joints, valid)
    s = measure_spine([joints])
    alignment = Alignment(align.TILT_DEG, s, {"front": np.zeros(3)})
    out = align_recording(rec, alignment)
    assert (out.frames, out.invalid_frames, out.splits, out.trimmed_frames) == (150, 17, 1, 0)
    # The second piece (frames 112..149, 1.23 s) is shorter than 41 frames at 20 fps.
    assert (out.dropped_pieces, out.dropped_frames) == (1, 38)
    (clip,) = out.clips
    assert (clip.filled_frames, clip.filled_gaps, clip.piece) == (5, 1, 0)
    assert len(clip.joints) == 67 and clip.start == 0.0 and clip.end == pytest.approx(3.3)
    # The filled stretch lies on the straight line the pelvis walks along.
    pelvis_x = clip.joints[:, H["pelvis"], 0]
    expected = (camera_to_world(pose_mm[K["PELVIS"]])[0] + alignment.translation("front")[0]
                + np.arange(67) / 20 * (300.0 / 149 * 30) / 1000)
    np.testing.assert_allclose(pelvis_x, expected, atol=1e-6)       # float32 input


# ---------------------------------------------------------------- corpus

def test_split_subjects_is_disjoint_complete_and_seeded():
    subjects = [f"s{i:02d}" for i in range(1, 13)]
    a = split_subjects(subjects, (0.7, 0.15, 0.15), seed=1)
    assert sorted(sum(a.values(), [])) == subjects
    assert [len(a[s]) for s in ("train", "val", "test")] == [8, 2, 2]
    assert a == split_subjects(reversed(subjects), (0.7, 0.15, 0.15), seed=1)
    assert a != split_subjects(subjects, (0.7, 0.15, 0.15), seed=2)
    with pytest.raises(ValueError, match="cannot fill"):
        split_subjects(["s01", "s02"], (0.7, 0.15, 0.15))
    with pytest.raises(ValueError, match="summing to 1"):
        split_subjects(subjects, (0.7, 0.2, 0.2))


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """A small stand-in FMS corpus (3 subjects, one episode per movement), read and written."""
    root = tmp_path_factory.mktemp("fms")
    fms_recorder.write(root / "raw", subjects=3, max_episodes=1, seed=0, progress=False)
    fms = FMSDataset(root / "raw", views=("front",), progress=False)
    # A clip of an earlier corpus in the same folder, which the new one must replace.
    stale = root / "hml" / "texts" / "front_s99_m01_e1.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    (root / "hml" / corpus.META_FILE).write_text('{"front_s99_m01_e1": {}}')
    summary = align.write_fms_corpus(fms, root / "hml", mirror=True, seed=0, progress=False)
    return fms, root / "hml", summary


def test_corpus_layout_splits_by_subject_and_counts(standin):
    fms, out, summary = standin
    meta = corpus.read_fms_meta(out)
    splits = {s: (out / f"{s}.txt").read_text().split() for s in align.SPLITS}
    names = sum(splits.values(), [])
    assert not (out / "texts" / "front_s99_m01_e1.txt").exists()     # the earlier corpus's
    assert sorted(names) == sorted(meta) and len(set(names)) == len(names) == summary.clips
    subjects = {s: {meta[n]["subject"] for n in splits[s]} for s in align.SPLITS}
    assert all(subjects[a].isdisjoint(subjects[b]) for a in align.SPLITS for b in align.SPLITS
               if a != b)
    assert subjects == {s: set(summary.subjects[s]) for s in align.SPLITS}
    for name in names:
        assert (out / "new_joint_vecs" / f"{name}.npy").is_file()
    assert np.load(out / "Std.npy").shape == (263,)
    # Every episode's recording gave one clip (no long gaps in this small corpus, or a count).
    sources = summary.clips - summary.mirrored
    # `skipped` starts with what the reader skipped, then the recordings alignment could not use.
    assert summary.skipped[:len(fms.skipped)] == [(str(p), r) for p, r in fms.skipped]
    assert sources + summary.dropped_pieces - summary.splits_at_gaps == len(fms) \
        - (len(summary.skipped) - len(fms.skipped))
    assert sum(sum(g.values()) for g in summary.movement_grade.values()) == sources
    first = next(n for n in names if not meta[n]["mirrored"])
    episode = next(ep for ep in fms if (ep.subject, ep.movement, ep.episode) ==
                   (meta[first]["subject"], meta[first]["movement"], meta[first]["episode"]))
    assert meta[first]["grade"] == episode.grade
    captions = dataset.read_captions(out / "texts" / f"{first}.txt")
    assert [c.text for c in captions] == movement_captions(meta[first]["movement"])
    read = dataset.read_split(out, "train", progress=False)
    assert not read.skipped and len(read.items) == summary.split_clips["train"]


def test_mirrored_copies_swap_movement_and_captions(standin):
    _, out, summary = standin
    meta = corpus.read_fms_meta(out)
    originals = [n for n in meta if not meta[n]["mirrored"]]
    assert summary.mirrored == len(originals) > 0
    for name in originals:
        m = meta["M" + name]
        assert m["mirrored"] and m["movement"] == MOVEMENTS[meta[name]["movement"]].mirror
        assert {k: v for k, v in m.items() if k not in ("movement", "mirrored")} == \
            {k: v for k, v in meta[name].items() if k not in ("movement", "mirrored")}
        texts = [c.text for c in dataset.read_captions(out / "texts" / f"{name}.txt")]
        mirrored = [c.text for c in dataset.read_captions(out / "texts" / f"M{name}.txt")]
        assert mirrored == [mirror_caption(t) for t in texts]
    # The mirrored motion of a left hurdle step lifts the right foot, and vice versa.
    name = next(n for n in originals if meta[n]["movement"] == "m03")
    for clip, raised in ((name, "l_foot"), ("M" + name, "r_foot")):
        joints = np.load(out / "new_joints" / f"{clip}.npy")
        other = "r_foot" if raised == "l_foot" else "l_foot"
        assert joints[:, H[raised], 1].max() > joints[:, H[other], 1].max() + 0.1


def test_standin_floor_is_level_after_the_tilt_is_undone(standin):
    fms, _, _ = standin
    recordings = [ep.recording for ep in fms if int(ep.movement[1:]) <= 8]   # standing tests
    tilts = {}
    for tilt in (0.0, align.TILT_DEG):
        alignment = fit_alignment(recordings, tilt)
        points = [align.floor_points(clip.joints) for rec in recordings
                  for clip in align_recording(rec, alignment).clips]
        tilts[tilt] = align.fit_floor(np.concatenate(points))
    assert tilts[0.0].tilt_deg > 4.0                       # the raw camera floor slopes
    assert tilts[align.TILT_DEG].tilt_deg < 1.0 and tilts[align.TILT_DEG].rms < 0.01
