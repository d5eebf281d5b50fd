"""The HumanML3D motion representation: 22 global joints <-> 263 features per frame.

MDM, the T2M evaluator and every released HumanML3D file use one representation, and the FMS clips
must land in exactly it. `process_joints` turns global joint positions (T, 22, 3) (Y up, metres,
20 fps) into features (T-1, 263): the skeleton is retargeted to the HumanML3D target skeleton,
put on the floor, moved to the XZ origin and turned to face +Z, and each frame is described by
its root angular and linear velocity in the root's own facing frame, root height, root-relative
joint positions ("ric"), per-joint 6D rotations from inverse kinematics, joint velocities and
foot contacts. `recover_joints` integrates the root back and gives the joints (T, 22, 3). The
reference processing's quirks are reproduced on purpose (see `inverse_kinematics`), because every
released feature file depends on them. `mirror_joints` and `mirror_caption` make the left-right
mirrored copies that HumanML3D stores under `M`-prefixed names.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.ndimage import gaussian_filter1d

from fmsnb.quaternion import qbetween, qinv, qmul, qrot, qyaw, to_cont6d

JOINT_NAMES = (
    "pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle", "r_ankle",
    "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head", "l_shoulder",
    "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
)
N_JOINTS = 22
N_FEATURES = 263
FPS = 20
KINEMATIC_CHAINS = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15),
                    (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
PARENTS = np.full(N_JOINTS, -1)
for _chain in KINEMATIC_CHAINS:
    PARENTS[list(_chain[1:])] = _chain[:-1]
# Unit direction of each bone in the rest pose (the joint's offset from its parent).
RAW_OFFSETS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
    [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
    [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0]], dtype=np.float64)
FACE_JOINTS = (2, 1, 17, 16)          # r_hip, l_hip, r_shoulder, l_shoulder
LEG_JOINTS = (5, 8)                   # their bone lengths set the retargeting scale
FEET_LEFT, FEET_RIGHT = (7, 10), (8, 11)
FOOT_CONTACT_THRESHOLD = 0.002        # squared displacement per frame, summed over x, y, z
LEFT_CHAIN = [1, 4, 7, 10, 13, 16, 18, 20]
RIGHT_CHAIN = [2, 5, 8, 11, 14, 17, 19, 21]

# Feature layout of one frame; slices into the 263 dimensions.
FEATURE_GROUPS = {
    "root angular velocity": slice(0, 1),
    "root linear velocity": slice(1, 3),
    "root height": slice(3, 4),
    "ric positions": slice(4, 67),
    "6D rotations": slice(67, 193),
    "joint velocities": slice(193, 259),
    "foot contacts": slice(259, 263),
}


def skeleton_offsets(joints0: np.ndarray) -> np.ndarray:
    """Bone offsets (22, 3) of one pose (22, 3): each raw direction scaled by its bone length."""
    lengths = np.linalg.norm(joints0[1:N_JOINTS] - joints0[PARENTS[1:]], axis=-1)
    offsets = RAW_OFFSETS.copy()
    offsets[1:] *= lengths[:, None]
    return offsets


@lru_cache(maxsize=1)
def target_offsets() -> np.ndarray:
    """The HumanML3D target skeleton (22, 3): offsets of frame 0 of AMASS clip 000021."""
    with resources.files("fmsnb").joinpath("assets/target_offsets.npy").open("rb") as f:
        offsets = np.load(f)
    offsets.setflags(write=False)
    return offsets


def _check_joints(joints: np.ndarray, min_frames: int = 2) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"joints must have shape (T, 22, 3), got {joints.shape}")
    if len(joints) < min_frames:
        raise ValueError(f"a clip needs at least {min_frames} frames, got {len(joints)}")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or infinite values")
    return joints


def _facing_direction(joints: np.ndarray, face_joints, smooth: bool) -> np.ndarray:
    """Unit forward direction (T, 3) from hips and shoulders: cross(up, across)."""
    r_hip, l_hip, r_sdr, l_sdr = face_joints
    across = joints[:, r_hip] - joints[:, l_hip] + joints[:, r_sdr] - joints[:, l_sdr]
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    if smooth:
        forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    return forward / np.linalg.norm(forward, axis=-1, keepdims=True)


def inverse_kinematics(joints: np.ndarray, smooth_forward: bool = False) -> np.ndarray:
    """Per-joint local rotations (T, 22, 4) that take the raw offsets onto the pose's bones.

    Faithful to the reference, quirks included: it reads the facing joints (2, 1, 17, 16) as
    (l_hip, r_hip, r_shoulder, l_shoulder), so its `across` uses the hips swapped; frame 0's
    root rotation is the identity whatever the pose; and every chain, the arm chains hanging off
    spine3 included, starts from the root rotation rather than its parent's accumulated one.
    """
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    forward = _facing_direction(joints, (l_hip, r_hip, r_sdr, l_sdr), smooth_forward)
    root = qbetween(forward, np.broadcast_to([0.0, 0.0, 1.0], forward.shape))
    root[0] = [1.0, 0.0, 0.0, 0.0]
    quats = np.zeros(joints.shape[:-1] + (4,))
    quats[:, 0] = root
    for chain in KINEMATIC_CHAINS:
        rot = root
        for parent, child in zip(chain[:-1], chain[1:]):
            bone = joints[:, child] - joints[:, parent]
            bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
            to_bone = qbetween(np.broadcast_to(RAW_OFFSETS[child], bone.shape), bone)
            local = qmul(qinv(rot), to_bone)
            quats[:, child] = local
            rot = qmul(rot, local)
    return quats


def forward_kinematics(quats: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Global joints (T, 22, 3) from local rotations (T, 22, 4), root positions (T, 3), offsets."""
    joints = np.zeros(quats.shape[:-1] + (3,))
    joints[:, 0] = root_pos
    for chain in KINEMATIC_CHAINS:
        rot = quats[:, 0]
        for parent, child in zip(chain[:-1], chain[1:]):
            rot = qmul(rot, quats[:, child])
            joints[:, child] = qrot(rot, np.broadcast_to(offsets[child], rot.shape[:-1] + (3,))) \
                + joints[:, parent]
    return joints


def uniform_skeleton(joints: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Retarget joints (T, 22, 3) to the target skeleton, scaling the root path by leg length."""
    tgt = target_offsets() if offsets is None else offsets
    src = skeleton_offsets(joints[0])
    leg = lambda off: sum(np.abs(off[j]).max() for j in LEG_JOINTS)  # noqa: E731
    scale = leg(tgt) / leg(src)
    return forward_kinematics(inverse_kinematics(joints), joints[:, 0] * scale, tgt)


def foot_contacts(joints: np.ndarray, threshold: float = FOOT_CONTACT_THRESHOLD):
    """Contacts (T-1, 2) per foot (ankle, toe): squared displacement to the next frame < threshold."""
    disp = ((joints[1:] - joints[:-1]) ** 2).sum(-1)
    return ((disp[:, FEET_LEFT] < threshold).astype(np.float64),
            (disp[:, FEET_RIGHT] < threshold).astype(np.float64))


def process_joints(joints: np.ndarray, feet_threshold: float = FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """Global joints (T, 22, 3) (Y up, metres, 20 fps) -> HumanML3D features (T-1, 263) float32."""
    joints = uniform_skeleton(_check_joints(joints))
    joints[:, :, 1] -= joints[:, :, 1].min()                       # on the floor
    joints = joints - joints[0, 0] * np.array([1.0, 0.0, 1.0])     # frame 0's root at XZ origin
    forward0 = _facing_direction(joints[:1], FACE_JOINTS, smooth=False)
    joints = qrot(qbetween(forward0, np.array([[0.0, 0.0, 1.0]]))[:, None], joints)  # face +Z

    feet_l, feet_r = foot_contacts(joints, feet_threshold)
    quats = inverse_kinematics(joints, smooth_forward=True)
    r_rot = quats[:, 0]                                            # the facing frame per frame
    root_vel = qrot(r_rot[1:], joints[1:, 0] - joints[:-1, 0])
    r_vel = np.arcsin(qmul(r_rot[1:], qinv(r_rot[:-1]))[:, 2:3])

    ric = joints - joints[:, :1] * np.array([1.0, 0.0, 1.0])
    ric = qrot(r_rot[:, None], ric)
    local_vel = qrot(r_rot[:-1, None], joints[1:] - joints[:-1])

    T = len(joints)
    features = np.concatenate([
        r_vel, root_vel[:, [0, 2]], ric[:-1, 0, 1:2],
        ric[:-1, 1:].reshape(T - 1, -1),
        to_cont6d(quats[:-1, 1:]).reshape(T - 1, -1),
        local_vel.reshape(T - 1, -1),
        feet_l, feet_r,
    ], axis=-1)
    return features.astype(np.float32)


def recover_root(features: np.ndarray):
    """Root Y rotations (T, 4) and root positions (T, 3) integrated from features (T, 263)."""
    angle = np.concatenate([np.zeros(1), np.cumsum(features[:-1, 0])])
    r_rot = qyaw(2 * angle)      # the feature holds asin of the quaternion's y: a half angle
    step = np.zeros((len(features), 3))
    step[1:, [0, 2]] = features[:-1, 1:3]
    root = np.cumsum(qrot(qinv(r_rot), step), axis=0)
    root[:, 1] = features[:, 3]
    return r_rot, root


def recover_joints(features: np.ndarray) -> np.ndarray:
    """Global joints (T, 22, 3) float32 from HumanML3D features (T, 263)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise ValueError(f"features must have shape (T, 263), got {features.shape}")
    r_rot, root = recover_root(features)
    ric = features[:, 4:67].reshape(-1, N_JOINTS - 1, 3)
    ric = qrot(qinv(r_rot)[:, None], ric)
    ric[..., [0, 2]] += root[:, None, [0, 2]]
    return np.concatenate([root[:, None], ric], axis=1).astype(np.float32)


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Left-right mirror (T, 22, 3): negate x and swap the left and right chains."""
    mirrored = np.array(joints, copy=True)
    mirrored[..., 0] *= -1
    mirrored[:, LEFT_CHAIN + RIGHT_CHAIN] = mirrored[:, RIGHT_CHAIN + LEFT_CHAIN]
    return mirrored


_SIDE = re.compile(r"\b(left|right)", re.IGNORECASE)


def mirror_caption(text: str) -> str:
    """Swap 'left' and 'right' (also as word prefixes, e.g. 'leftward', and in 'left/ADV')."""
    def swap(m: re.Match) -> str:
        word = m.group(1)
        other = "right" if word.lower() == "left" else "left"
        return other.capitalize() if word[0].isupper() else other
    return _SIDE.sub(swap, text)
