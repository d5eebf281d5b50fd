"""The procedural FMS stand-in: published format, round trip through the reader, grades, tilt,
and the choreography (`fmsnb.standin.fms_moves`) that it records."""
import json
from collections import Counter

import numpy as np
import pytest

from fmsnb.fms import KINECT_INDEX, MOVEMENTS, FMSDataset, read_recording
from fmsnb.standin import fms_moves as moves
from fmsnb.standin import fms_recorder as fs
from fmsnb.standin.body import BodyShape


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("fms_standin")
    summary = fs.write(out, subjects=2, max_episodes=1, seed=3, progress=False)
    return out, summary, fs.plan_corpus(2, 1, seed=3)


def test_layout_and_keys(corpus):
    out, summary, plans = corpus
    front = sorted((out / "Skeleton data" / "Front").glob("*.json"))
    side = sorted((out / "Skeleton data" / "Side").glob("*.json"))
    assert len(front) == len(side) == len(plans) == summary["episodes"] == 30
    assert (out / "README.txt").read_text().startswith("PROCEDURAL STAND-IN")
    data = json.loads(front[0].read_text())
    assert set(data) == {"total_frames", "frames", "original_frmae_num"}
    assert data["total_frames"] == len(data["frames"]) == len(data["original_frmae_num"])
    body = next(f["bodies"][0] for f in data["frames"] if f["bodies"])
    assert set(body) == {"joint_positions", "joint_orientations", "joint_position_2d_color",
                         "confidence_level"}
    q = np.array(body["joint_orientations"])
    assert q.shape == (32, 4) and np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-3)
    assert set(body["confidence_level"]) <= {0, 1, 2, 3}
    uv = np.array(body["joint_position_2d_color"])
    assert ((uv > 0) & (uv < fs.COLOUR_SIZE)).all()
    scores = json.loads((out / "experts_score.json").read_text())
    assert all(len(g) == 3 for s in scores.values() for m in s.values() for g in m.values())


def test_round_trip_through_reader(corpus):
    out, _, plans = corpus
    for plan in plans[::7]:
        captures = fs.record_episode(plan, seed=3)
        for view, cap in captures.items():
            rec = read_recording(out / "Skeleton data" / view.capitalize() / plan.file_name(view))
            assert (rec.subject, rec.movement, rec.episode, rec.view) == (
                plan.subject, plan.movement, plan.episode, view)
            body = cap.has_body
            assert np.abs(rec.joints[body] - cap.joints[body]).max() <= 0.05 + 1e-3
            assert np.isnan(rec.joints[~body]).all() and not rec.valid[~body].any()
            np.testing.assert_array_equal(rec.confidence[body], cap.confidence[body])
            np.testing.assert_array_equal(rec.source_frames, cap.source_frames)
            np.testing.assert_allclose(np.diff(rec.timestamps), 1 / 30, atol=1e-6)


def test_dataset_over_corpus(corpus):
    out, summary, plans = corpus
    ds = FMSDataset(out, views=("front", "side"), progress=False)
    # All 15 movements are there; only three-way expert disagreements are left out.
    assert all(n >= 1 for n in ds.counts()["movement"].values())
    assert len(ds) + len(ds.scores.dropped) == len(plans)
    assert all("disagree three ways" in reason for _, reason in ds.skipped)
    # Frames without a body exist and are invalid; most frames are valid.
    empty = sum(int(np.isnan(e.recordings[v].joints).all(axis=(1, 2)).sum())
                for e in ds for v in ("front", "side"))
    assert summary["no_body_frames"] > 0 and empty > 0
    valid = np.concatenate([e.recording.valid for e in ds])
    assert 0.8 < valid.mean() < 1.0


def test_all_movements_and_grade_shares():
    plans = fs.plan_corpus(12, 3, seed=0)
    assert {p.movement for p in plans} == set(MOVEMENTS)
    assert {p.subject for p in plans} == {f"s{i:02d}" for i in range(1, 13)}
    assert all(1 <= p.episode <= 3 for p in plans)
    grades = Counter(p.grade for p in plans)
    shares = {g: grades[g] / len(plans) for g in (1, 2, 3)}
    assert grades.most_common(1)[0][0] == 2
    assert 0.1 < shares[1] < 0.35 and 0.4 < shares[2] < 0.7 and 0.1 < shares[3] < 0.4
    # Experts agree mostly, disagree occasionally, all three rarely.
    experts = np.array([p.experts for p in fs.plan_corpus(40, 3, seed=0)])
    disagree = (experts.min(1) != experts.max(1)).mean()
    three_way = (np.sort(experts, 1) == [1, 2, 3]).all(1).mean()
    assert 0.05 < disagree < 0.3 and 0 < three_way < 0.03


def test_determinism(tmp_path):
    a = fs.write(tmp_path / "a", 1, 1, seed=5, progress=False)
    b = fs.write(tmp_path / "b", 1, 1, seed=5, progress=False)
    assert a["frames"] == b["frames"]
    for path in sorted((tmp_path / "a").rglob("*.json")):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
    other = fs.plan_corpus(1, 1, seed=6)[0]
    same = fs.plan_corpus(1, 1, seed=5)[0]
    assert other.experts != same.experts or other.shape != same.shape
    # Regenerating into a stand-in folder replaces it; a foreign folder is refused.
    fs.write(tmp_path / "a", 1, 1, seed=5, progress=False)
    (tmp_path / "a" / "README.txt").write_text("the real dataset")
    with pytest.raises(FileExistsError, match="not a stand-in"):
        fs.write(tmp_path / "a", 1, 1, seed=5, progress=False)


def test_camera_tilt():
    # The floor normal (world +Y) seen by each camera is 6 degrees off its -Y axis, about X.
    for camera in fs.CAMERAS.values():
        normal = camera.rotation @ [0.0, 1.0, 0.0]
        assert np.degrees(np.arccos(-normal[1])) == pytest.approx(fs.CAMERA_TILT_DEG)
        assert abs(normal[0]) < 1e-12
        np.testing.assert_allclose(camera.rotation @ camera.rotation.T, np.eye(3), atol=1e-12)
    # Front camera: the subject's left (+X world) is image right (+X camera), Z is distance.
    p = fs.FRONT_CAMERA.to_camera(np.array([[0.3, 1.0, 0.0], [0.0, 1.5, 0.0]]))
    assert p[0, 0] > 250 and p[1, 1] < p[0, 1]
    assert p[0, 2] == pytest.approx(1000 * fs.FRONT_DISTANCE, rel=0.01)


def test_standing_feet_lie_on_a_tilted_plane(corpus):
    """In the files, the feet of standing frames fit a plane 6 degrees off the camera's -Y."""
    out, _, plans = corpus
    standing = {"m01", "m03", "m04", "m05", "m06", "m07", "m08"}
    feet = [KINECT_INDEX["FOOT_LEFT"], KINECT_INDEX["FOOT_RIGHT"]]
    for view in ("front", "side"):
        points = []
        for plan in plans:
            if plan.movement in standing:
                rec = read_recording(out / "Skeleton data" / view.capitalize()
                                     / plan.file_name(view))
                points.append(rec.joints[np.flatnonzero(rec.valid)[:3]][:, feet].reshape(-1, 3))
        points = np.concatenate(points)
        centred = points - points.mean(0)
        normal = np.linalg.svd(centred)[2][-1]
        normal *= -np.sign(normal[1])
        angle = np.degrees(np.arccos(-normal[1]))
        assert angle == pytest.approx(fs.CAMERA_TILT_DEG, abs=1.5), view
        assert np.abs(centred @ normal).max() < 30   # mm: flat apart from the sensor jitter


@pytest.mark.parametrize("test, feature, sign", [
    ("m01", lambda k, h: k["pelvis"][:, 1].min() / h, -1),                       # deeper
    ("m03", lambda k, h: k["l_ankle"][:, 1].max() / h, 1),                       # higher step
    ("m05", lambda k, h: k["r_knee"][:, 1].min() / h, -1),                       # knee lower
    ("m07", lambda k, h: np.linalg.norm(k["l_hand"] - k["r_hand"], axis=-1)[
        len(k.positions) // 2] / h, -1),                                          # hands closer
    ("m09", lambda k, h: k["l_ankle"][:, 1].max() / h, 1),                       # leg higher
    ("m11", lambda k, h: k["pelvis"][:, 1].max() / h, 1),                        # hips lift
    ("m14", lambda k, h: np.linalg.norm(k["l_elbow"] - k["r_knee"], axis=-1).min() / h, -1),
])
def test_grades_show_in_the_motion(test, feature, sign):
    """Each test's key measure moves with the grade, averaged over a few takes."""
    shape = BodyShape().scaled(0.95)
    means = []
    for grade, quality in ((1, 0.2), (2, 0.5), (3, 0.8)):
        values = [feature(moves.perform(moves.Take(shape, grade, quality, 1.0,
                                                   np.random.default_rng(k)), test), shape.height)
                  for k in range(3)]
        means.append(np.mean(values))
    assert sign * (means[1] - means[0]) > 0 and sign * (means[2] - means[1]) > 0, means


def test_motion_stays_above_the_floor():
    shape = BodyShape()
    for movement in MOVEMENTS:
        for grade, quality in ((1, 0.1), (3, 0.9)):
            kp = moves.perform(moves.Take(shape, grade, quality, 1.0, np.random.default_rng(0)),
                               movement)
            assert kp.positions[..., 1].min() > -0.035, movement
            assert np.isfinite(kp.positions).all()
