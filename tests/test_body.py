import numpy as np
import pytest

from fmsnb import humanml3d
from fmsnb.standin.body import (HUMANML22, JOINTS, KEYPOINTS, KINECT32, PARENT, BodyShape,
                                angles_from_quats, joint_quats, pose, random_shape, rolled_ankle,
                                solve_arms, solve_legs, toe_ankle)

# Keypoints that sit at a joint pivot, with the pivot each hangs from (the bones whose lengths
# must never change under rotation).
BONES = [(child, parent) for child, parent in [
    ("spine1", "pelvis"), ("spine3", "spine1"), ("neck", "spine3"), ("head", "neck"),
    ("l_collar", "spine3"), ("l_shoulder", "l_collar"), ("l_elbow", "l_shoulder"),
    ("l_wrist", "l_elbow"), ("l_handtip", "l_wrist"), ("r_wrist", "r_elbow"),
    ("l_hip", "pelvis"), ("l_knee", "l_hip"), ("l_ankle", "l_knee"), ("l_foot", "l_ankle"),
    ("r_knee", "r_hip"), ("r_heel", "r_ankle"), ("nose", "head"), ("spine_navel", "spine1")]]


def random_motion(rng, T=30):
    rotations = {j: rng.uniform(-2.0, 2.0, (T, 3)) for j in JOINTS}
    return rotations, rng.normal(0, 1, (T, 3)), rng.uniform(-np.pi, np.pi, T)


def test_bone_lengths_constant_under_arbitrary_rotations():
    rng = np.random.default_rng(0)
    shape = random_shape(rng)
    kp = pose(shape, *random_motion(rng))
    rest = pose(shape)
    for child, parent in BONES:
        lengths = np.linalg.norm(kp[child] - kp[parent], axis=-1)
        rest_length = np.linalg.norm(rest[child] - rest[parent], axis=-1)
        np.testing.assert_allclose(lengths, rest_length[0], atol=1e-12, err_msg=f"{parent}-{child}")
    # Whole-body rigidity inside one segment: eyes, ears and nose keep their distances.
    d = np.linalg.norm(kp["l_eye"] - kp["r_ear"], axis=-1)
    np.testing.assert_allclose(d, d[0], atol=1e-12)


def test_rest_pose_faces_plus_z_left_at_plus_x_feet_on_floor():
    shape = BodyShape()
    kp = pose(shape)
    assert kp["l_hip"][0, 0] > kp["r_hip"][0, 0]
    assert kp["l_shoulder"][0, 0] > kp["r_shoulder"][0, 0]
    assert kp["nose"][0, 2] > kp["head"][0, 2]
    assert kp["l_foot"][0, 2] > kp["l_heel"][0, 2]
    soles = np.array([kp[n][0, 1] for n in ("l_heel", "r_heel", "l_foot", "r_foot")])
    assert soles.min() == pytest.approx(0.0, abs=1e-12)
    assert soles.max() < 0.03
    assert kp["l_wrist"][0, 1] < kp["l_elbow"][0, 1] < kp["l_shoulder"][0, 1]   # arms hang
    # HumanML3D's facing rule (REFERENCE 3, step 4) must give +Z for the rest pose.
    j = kp.humanml22()
    across = j[0, 2] - j[0, 1] + j[0, 17] - j[0, 16]
    forward = np.cross([0.0, 1.0, 0.0], across)
    np.testing.assert_allclose(forward / np.linalg.norm(forward), [0, 0, 1], atol=1e-9)
    assert shape.height == pytest.approx(1.75)


def test_random_shapes_vary_within_range():
    rng = np.random.default_rng(1)
    shapes = [random_shape(rng) for _ in range(200)]
    heights = np.array([s.height for s in shapes])
    assert heights.min() >= 1.5 and heights.max() <= 1.95 and heights.std() > 0.1
    leg_ratio = np.array([s.thigh / s.height for s in shapes])
    assert leg_ratio.std() > 0.003
    for s in shapes[:20]:       # the rest pose of every shape stands on the floor
        assert pose(s).on_floor().positions[0, :, 1].min() >= -1e-9


def test_anatomical_sign_conventions():
    shape = BodyShape()
    rest = pose(shape)
    deg = np.deg2rad

    def moved(joint, angles, point):
        return pose(shape, {joint: deg(np.array(angles, float))})[point][0] - rest[point][0]

    assert moved("l_hip", [90, 0, 0], "l_knee")[2] > 0.3          # thigh forward
    assert moved("r_knee", [90, 0, 0], "r_ankle")[2] < -0.3        # shank backward
    assert moved("l_ankle", [20, 0, 0], "l_foot")[1] > 0.02        # toes up
    assert moved("l_shoulder", [90, 0, 0], "l_wrist")[2] > 0.4     # arm forward
    assert moved("l_shoulder", [180, 0, 0], "l_wrist")[1] > 1.0    # arm overhead
    assert moved("l_shoulder", [0, 90, 0], "l_wrist")[0] > 0.4     # left arm out to +X
    assert moved("r_shoulder", [0, 90, 0], "r_wrist")[0] < -0.4    # right arm out to -X
    assert moved("l_elbow", [90, 0, 0], "l_wrist")[2] > 0.2        # forearm forward
    assert moved("l_collar", [0, 20, 0], "l_shoulder")[1] > 0.03   # shrug
    assert moved("r_collar", [0, 20, 0], "r_shoulder")[1] > 0.03
    assert moved("spine", [40, 0, 0], "neck")[2] > 0.2             # bend forward
    assert moved("spine", [0, 20, 0], "neck")[0] > 0.1             # lean left
    assert moved("spine", [0, 0, 40], "l_shoulder")[2] < -0.05     # turn left
    assert moved("pelvis", [90, 0, 0], "head")[2] > 0.5            # prone: head forward
    hip_in = pose(shape, {"l_hip": deg([0, 0, 40.0])})
    assert hip_in["l_foot"][0, 0] < hip_in["l_ankle"][0, 0] - 0.05  # internal: toes turn in
    turned = pose(shape, yaw=np.array([np.pi / 2]))
    assert turned["nose"][0, 0] > 0.1                              # yaw +90: faces +X


def test_mirror_symmetric_angles_give_mirror_pose():
    rng = np.random.default_rng(2)
    T = 10
    left = {j: rng.uniform(-1, 1, (T, 3)) for j in ("l_hip", "l_knee", "l_shoulder", "l_elbow")}
    mirrored = {"r" + j[1:]: a for j, a in left.items()}
    a, b = pose(BodyShape(), left), pose(BodyShape(), mirrored)
    for name in KEYPOINTS:
        other = name if name[:2] not in ("l_", "r_") else {"l": "r", "r": "l"}[name[0]] + name[1:]
        np.testing.assert_allclose(a[name] * [-1, 1, 1], b[other], atol=1e-12)


def test_skeleton_shapes_and_shared_joints():
    rng = np.random.default_rng(3)
    kp = pose(random_shape(rng), *random_motion(rng, T=7))
    h, k = kp.humanml22(), kp.kinect32()
    assert h.shape == (7, 22, 3) and k.shape == (7, 32, 3)
    assert kp.kinect32_quats().shape == (7, 32, 4)
    assert HUMANML22 == humanml3d.JOINT_NAMES
    shared = ["pelvis", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle", "l_foot",
              "r_foot", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
              "neck", "head", "l_collar", "r_collar"]
    for name in shared:
        np.testing.assert_array_equal(h[:, HUMANML22.index(name)], k[:, KINECT32.index(name)])
    # The Kinect spine is its own: navel and chest are not HumanML3D spine joints.
    for name in ("spine_navel", "spine_chest"):
        assert np.linalg.norm(kp[name] - h[:, [3, 6, 9]].transpose(1, 0, 2), axis=-1).min() > 0.01


def test_kinect_tree_bone_lengths():
    # REFERENCE section 2: parents of the 32 Kinect joints (eyes/ears measured from the head).
    parents = [-1, 0, 1, 2, 2, 4, 5, 6, 7, 8, 7, 2, 11, 12, 13, 14, 15, 14, 0, 18, 19, 20,
               0, 22, 23, 24, 3, 26, 26, 26, 26, 26]
    rng = np.random.default_rng(4)
    shape = random_shape(rng)
    k = pose(shape, *random_motion(rng)).kinect32()
    lengths = np.linalg.norm(k[:, 1:] - k[:, parents[1:]], axis=-1)
    rigid = [i - 1 for i in range(1, 32) if KINECT32[i] not in ("spine_navel", "spine_chest")]
    np.testing.assert_allclose(lengths[:, rigid], lengths[:1, rigid].repeat(len(k), 0), atol=1e-12)
    # The navel and chest landmarks ride the bending spine: their distances change, slightly
    # for everyday bending.
    bend = {"spine": np.deg2rad([[0, 0, 0], [40, 15, 20]]),
            "chest": np.deg2rad([[0, 0, 0], [20, 10, 10]])}
    k = pose(shape, bend).kinect32()
    spine = np.linalg.norm(k[:, 1:3] - k[:, 0:2], axis=-1)
    assert 1e-4 < np.abs(spine[1] - spine[0]).max() < 0.04


def test_floor_and_planting():
    shape = BodyShape()
    T = 40
    t = np.linspace(0, 2 * np.pi, T)
    # Knee bends lower the body; per-frame flooring keeps the soles on the ground.
    squat = {side: np.stack([a * np.sin(t / 2) ** 2, 0 * t, 0 * t], -1)
             for side, a in (("l_hip", 1.2), ("r_hip", 1.2), ("l_knee", 2.0), ("r_knee", 2.0),
                             ("l_ankle", 0.8), ("r_ankle", 0.8))}
    kp = pose(shape, squat).on_floor(per_frame=True)
    soles = np.stack([kp[n][:, 1] for n in ("l_heel", "r_heel", "l_foot", "r_foot")], -1)
    np.testing.assert_allclose(soles.min(axis=1), 0.0, atol=1e-12)
    assert kp["pelvis"][:, 1].min() < shape.pelvis_height - 0.3
    # Clip-level flooring keeps a jump in the air.
    root = np.stack([0 * t, shape.pelvis_height + 0.3 * np.sin(t / 2), 0 * t], -1)
    jump = pose(shape, root=root).on_floor()
    assert jump["l_heel"][:, 1].min() == pytest.approx(0.0) and jump["l_heel"][:, 1].max() > 0.25
    # A leg swinging back while the other is lifted: the supporting foot must not slide.
    swing = {"l_hip": np.stack([-0.5 * np.sin(t / 2), 0 * t, 0 * t], -1),
             "r_hip": np.full((T, 3), [0.6, 0, 0]), "r_knee": np.full((T, 3), [0.8, 0, 0])}
    planted = pose(shape, swing).on_floor(per_frame=True).plant_feet()
    soles = np.stack([planted[n] for n in ("l_heel", "l_foot", "r_heel", "r_foot")], 1)
    low = soles[:-1, :, 1].argmin(axis=1)
    assert set(low) <= {0, 1}                                      # the left foot supports
    step = soles[1:, :, [0, 2]] - soles[:-1, :, [0, 2]]
    np.testing.assert_allclose(step[np.arange(T - 1), low], 0.0, atol=1e-12)
    assert np.ptp(planted["pelvis"][:, 2]) > 0.1                   # the body moved instead


def test_angles_round_trip_through_quaternions():
    rng = np.random.default_rng(5)
    for joint in JOINTS:
        angles = rng.uniform(-1.4, 1.4, (20, 3))
        np.testing.assert_allclose(angles_from_quats(joint, joint_quats(joint, angles)), angles,
                                   atol=1e-9, err_msg=joint)


def test_solve_legs_puts_flat_feet_on_targets():
    rng = np.random.default_rng(6)
    shape = random_shape(rng)
    T = 30
    t = np.linspace(0, 1, T)
    # A squat with a forward-pitched, turning pelvis, one foot stepping forward, toes out.
    root = np.stack([0.05 * t, shape.pelvis_height - 0.45 * t, -0.15 * t], -1)
    yaw = 0.4 * t
    rotations = {"pelvis": np.stack([0.5 * t, 0.1 * t, 0 * t], -1),
                 "l_hip": np.stack([0 * t, 0 * t, 0.2 * t], -1)}
    ankles = {"l": [0.15, shape.ankle_height, 0.05],
              "r": np.stack([-0.12 + 0 * t, shape.ankle_height + 0.1 * np.sin(np.pi * t),
                             0.05 + 0.3 * t], -1)}
    solved = solve_legs(shape, rotations, root, yaw, ankles, toe_out={"l": 0.3})
    np.testing.assert_array_equal(solved["pelvis"], rotations["pelvis"])
    np.testing.assert_allclose(solved["l_hip"][:, 2], 0.2 * t)            # twist kept
    kp = pose(shape, solved, root, yaw)
    reachable = np.linalg.norm(kp["r_hip"] - ankles["r"], axis=-1) < shape.thigh + shape.shank
    np.testing.assert_allclose(kp["r_ankle"][reachable], ankles["r"][reachable], atol=1e-9)
    reachable = np.linalg.norm(kp["l_hip"] - ankles["l"], axis=-1) < shape.thigh + shape.shank
    assert reachable.sum() > T // 2
    left = np.broadcast_to(ankles["l"], (T, 3))
    np.testing.assert_allclose(kp["l_ankle"][reachable], left[reachable], atol=1e-9)
    # Flat feet: heel and toe at the same height, the left foot turned out by 0.3 rad.
    foot = kp["l_foot"] - kp["l_heel"]
    rest = pose(shape)
    np.testing.assert_allclose(foot[:, 1], (rest["l_foot"] - rest["l_heel"])[0, 1], atol=1e-9)
    np.testing.assert_allclose(np.arctan2(foot[:, 0], foot[:, 2]), yaw + 0.3, atol=1e-9)
    assert kp["l_knee"][-1, 1] < kp["l_hip"][-1, 1]


def test_rolled_foot_keeps_its_contact_point():
    shape = BodyShape()
    T = 25
    pitch = np.linspace(-0.8, 0.5, T)
    heading = np.full(T, 0.7)
    footprint = np.broadcast_to([0.1, shape.ankle_height, 0.2], (T, 3))
    ankle = rolled_ankle(shape, footprint, heading, pitch)
    root = np.array([0.1, shape.pelvis_height - 0.1, 0.2])
    legs = solve_legs(shape, {}, np.broadcast_to(root, (T, 3)), heading, {"l": ankle},
                      foot_pitch={"l": pitch})
    kp = pose(shape, legs, np.broadcast_to(root, (T, 3)), heading)
    np.testing.assert_allclose(kp["l_ankle"], ankle, atol=1e-9)
    # The flat foot at the footprint, from the rest pose turned and moved there.
    rest = pose(shape, yaw=heading[:1])
    flat = {n: rest[n][0] - rest["l_ankle"][0] + footprint[0] for n in ("l_heel", "l_foot")}
    heel = kp["l_heel"][pitch > 0]
    np.testing.assert_allclose(heel, np.broadcast_to(flat["l_heel"], heel.shape), atol=1e-9)
    # Rolling on the ball: the toe point (0.2 ankle heights above the sole) stays within 1.5 cm.
    toe = kp["l_foot"][pitch < 0]
    assert np.abs(toe - flat["l_foot"]).max() < 0.015
    assert kp["l_heel"][0, 1] > 0.1


def _bent_towards(root, middle, end, pole):
    """Cosine between the middle joint's offset from the root->end line and the pole's."""
    axis = (end - root) / np.linalg.norm(end - root, axis=-1, keepdims=True)
    off = middle - root
    off = off - (off * axis).sum(-1, keepdims=True) * axis
    pole = np.broadcast_to(pole, off.shape)
    pole = pole - (pole * axis).sum(-1, keepdims=True) * axis
    return (off * pole).sum(-1) / np.linalg.norm(off, axis=-1) / np.linalg.norm(pole, axis=-1)


def test_pole_ik_bends_knees_and_elbows_towards_their_poles():
    rng = np.random.default_rng(8)
    shape = random_shape(rng)
    T = 20
    t = np.linspace(0, 1, T)
    root = np.stack([0.1 * t, shape.pelvis_height - 0.1 - 0.3 * t, 0 * t], -1)
    yaw = 0.3 + 0.5 * t
    rotations = {"pelvis": np.stack([0.4 * t, 0 * t, 0.2 * t], -1),
                 "l_collar": np.array([0.0, 0.3, 0.1]), "r_wrist": np.array([0.5, 0.0, 0.0])}
    ankles = {"l": np.stack([0.2 + 0 * t, shape.ankle_height + 0.2 * t, 0.1 * t], -1),
              "r": np.array([-0.15, shape.ankle_height, 0.0])}
    knee_poles = {"l": np.stack([np.sin(yaw) - 0.8 * t, 0 * t, np.cos(yaw)], -1),  # caving in
                  "r": np.array([-0.5, 0.0, 1.0])}                             # turned out
    legs = solve_legs(shape, rotations, root, yaw, ankles, knee_poles=knee_poles)
    kp = pose(shape, legs, root, yaw)
    for side in "lr":
        np.testing.assert_allclose(kp[f"{side}_ankle"], np.broadcast_to(ankles[side], (T, 3)),
                                   atol=1e-9)
        cos = _bent_towards(kp[f"{side}_hip"], kp[f"{side}_knee"], kp[f"{side}_ankle"],
                            knee_poles[side])
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)   # in the pole's plane, on its side
    # The feet are still flat along the heading, whatever the knee does.
    foot = kp["l_foot"] - kp["l_heel"]
    np.testing.assert_allclose(np.arctan2(foot[:, 0], foot[:, 2]), yaw, atol=1e-9)
    # Arms: wrists on targets, elbows out to the side and down, the rest kept.
    chest = kp["spine3"]
    wrists = {"l": chest + [0.35, -0.1, 0.25], "r": chest + [-0.2, 0.3, 0.2]}
    elbow_poles = {"l": np.array([1.0, -1.0, 0.0]), "r": np.array([-1.0, 0.0, -0.3])}
    arms = solve_arms(shape, legs, root, yaw, wrists, elbow_poles)
    for joint in ("pelvis", "l_hip", "r_knee", "l_collar", "r_wrist"):
        np.testing.assert_array_equal(arms[joint], legs[joint])
    kp = pose(shape, arms, root, yaw)
    for side in "lr":
        np.testing.assert_allclose(kp[f"{side}_wrist"], wrists[side], atol=1e-9)
        cos = _bent_towards(kp[f"{side}_shoulder"], kp[f"{side}_elbow"], kp[f"{side}_wrist"],
                            elbow_poles[side])
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    # Out of reach: the arm points at the target, as straight as it may be.
    far = {"l": kp["l_shoulder"] + [2.0, 0.5, 0.0]}
    kp = pose(shape, solve_arms(shape, arms, root, yaw, far, elbow_poles), root, yaw)
    reach = kp["l_wrist"] - kp["l_shoulder"]
    aim = far["l"] - kp["l_shoulder"]
    np.testing.assert_allclose(np.cross(reach, aim), 0.0, atol=1e-9)
    assert np.allclose(np.linalg.norm(reach, axis=-1), shape.upper_arm + shape.forearm,
                       rtol=1e-3)
    with pytest.raises(ValueError, match="elbow_poles"):
        solve_arms(shape, {}, root, yaw, {"r": wrists["r"]}, {"l": elbow_poles["l"]})
    with pytest.raises(ValueError, match="'x'"):
        solve_legs(shape, {}, root, yaw, {"x": ankles["r"]}, knee_poles=knee_poles)


def test_toe_ankle_stands_the_foot_on_its_toe_point():
    shape = random_shape(np.random.default_rng(9))
    T = 15
    pitch = np.linspace(0.0, -1.2, T)          # flat, then the heel rises
    heading = np.full(T, -0.4)
    toe = np.broadcast_to([0.1, 0.2 * shape.ankle_height, 0.3], (T, 3))
    ankle = toe_ankle(shape, toe, heading, pitch)
    root = np.broadcast_to([0.15, shape.pelvis_height - 0.15, 0.2], (T, 3))
    legs = solve_legs(shape, {}, root, heading, {"l": ankle}, foot_pitch={"l": pitch},
                      knee_poles={"l": [np.sin(-0.4), 0.0, np.cos(-0.4)]})
    kp = pose(shape, legs, root, heading)
    np.testing.assert_allclose(kp["l_foot"], toe, atol=1e-9)
    # Flat at first (the foot as at rest), then the heel rises over the fixed toe point.
    rest = pose(shape)
    assert kp["l_heel"][0, 1] - kp["l_foot"][0, 1] == pytest.approx(
        (rest["l_heel"] - rest["l_foot"])[0, 1])
    assert np.all(np.diff(kp["l_heel"][:, 1]) > 0)
    # A scalar pitch works alike.
    np.testing.assert_allclose(toe_ankle(shape, toe, heading, -1.2)[-1], ankle[-1], atol=1e-12)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown joint"):
        pose(BodyShape(), {"l_toe": np.zeros(3)})
    with pytest.raises(ValueError, match="l_knee"):
        pose(BodyShape(), {"l_knee": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="frame count"):
        pose(BodyShape(), {"l_knee": np.zeros((5, 3))}, yaw=np.zeros(4))
    assert set(PARENT) == set(JOINTS)
