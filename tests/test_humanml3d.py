import numpy as np
import pytest

from fmsnb import humanml3d as h
from fmsnb.quaternion import qrot, qyaw

# Largest differences between re-processing the released joints of 012314 and its released
# features, per feature group, as the reference processing itself produces them
# (../shared/data/README.md).
REFERENCE_REPROCESSING_DIFF = {
    "root angular velocity": 0.0003,
    "ric positions": 0.0068,
    "6D rotations": 0.0132,
    "joint velocities": 0.0004,
    "foot contacts": 0.0,
}


@pytest.fixture(scope="module")
def clip(shared_data):
    d = shared_data / "humanml3d"
    return np.load(d / "new_joint_vecs/012314.npy"), np.load(d / "new_joints/012314.npy")


def test_target_offsets_rederived_from_clip_000021(shared_data):
    raw = np.load(shared_data / "humanml3d/000021_raw_joints.npy")
    np.testing.assert_allclose(h.target_offsets(), h.skeleton_offsets(raw[0, :22]), atol=1e-12)


def test_recover_joints_matches_released_joints(clip):
    features, joints = clip
    assert np.abs(h.recover_joints(features) - joints).max() < 1e-5


def test_process_joints_reproduces_reference_reprocessing(clip):
    features, joints = clip
    ours = h.process_joints(joints)
    assert ours.shape == (len(joints) - 1, 263)
    diff = np.abs(ours - features[:-1])
    for group, expected in REFERENCE_REPROCESSING_DIFF.items():
        assert abs(diff[:, h.FEATURE_GROUPS[group]].max() - expected) < 1e-4, group


def test_round_trip_through_features(clip):
    _, joints = clip
    again = h.recover_joints(h.process_joints(joints))
    # The released joints are already on the target skeleton, floor and origin, facing +Z.
    assert np.abs(again - joints[:-1]).max() < 0.02


def test_processing_invariant_to_yaw_and_horizontal_shift(clip):
    _, joints = clip
    moved = qrot(qyaw(np.array(0.7)), joints.astype(np.float64)) + np.array([1.5, 0.0, -2.0])
    assert np.abs(h.process_joints(moved) - h.process_joints(joints)).max() < 1e-4


def test_mirror_of_mirror_is_identity(clip):
    _, joints = clip
    np.testing.assert_array_equal(h.mirror_joints(h.mirror_joints(joints)), joints)
    text = "a person kicks with the Left leg then turns right/ADV leftward"
    assert h.mirror_caption(h.mirror_caption(text)) == text
    assert h.mirror_caption(text) == "a person kicks with the Right leg then turns left/ADV rightward"


def test_processing_commutes_with_mirroring(clip):
    _, joints = clip
    mirrored_first = h.recover_joints(h.process_joints(h.mirror_joints(joints)))
    mirrored_last = h.mirror_joints(h.recover_joints(h.process_joints(joints)))
    # Not exact: the reference IK's swapped hips make the smoothed facing slightly asymmetric.
    assert np.abs(mirrored_first - mirrored_last).max() < 0.05
    turn, turn_mirrored = h.process_joints(joints)[:, 0], h.process_joints(h.mirror_joints(joints))[:, 0]
    assert np.corrcoef(turn, turn_mirrored)[0, 1] < -0.99


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 21, 3)), "shape"),
    (np.zeros((1, 22, 3)), "at least"),
    (np.full((10, 22, 3), np.nan), "NaN"),
])
def test_bad_joints_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        h.process_joints(bad)


def test_recover_rejects_wrong_width():
    with pytest.raises(ValueError, match="263"):
        h.recover_joints(np.zeros((5, 259)))
