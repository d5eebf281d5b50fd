"""A parametric procedural human body: segment lengths, joint angles in, keypoint positions out.

Both embedded stand-in corpora (the HumanML3D-layout one and the FMS one) animate this body, so
that their skeletons come from one anatomy: `pose` turns per-joint angle curves into global
positions of a rich keypoint set from which `Keypoints.humanml22` takes the HumanML3D 22 joints
and `Keypoints.kinect32` the Azure Kinect 32 joints (shared joints are the same points).

Conventions (all arrays float64, vectorised over T frames):
- World frame: metres, +Y up. At zero yaw the body faces +Z and its LEFT side is at +X (as in
  HumanML3D: l_hip has the larger x). `yaw` (T,) turns the whole body about +Y; the facing
  direction is (sin yaw, 0, cos yaw), so a positive yaw turns the body to its left.
- Rest pose (all angles zero): standing upright, feet flat on y = 0 pointing +Z, arms hanging
  straight down with the palms towards the thighs, head level. The spine has a slight S-curve.
- `rotations[joint]` is an array (T, 3) or (3,) of anatomical angles in radians,
  (flexion, abduction, twist), applied as R = Rx(flexion) Rz(abduction) Ry(twist) in the parent
  segment's frame (Rx/Rz/Ry about the body's rest lateral, forward and vertical axes, signs set
  per joint as below). Flexion acts first, so with the shoulder flexed 90 degrees abduction
  swings the arm horizontally. Left and right are mirror images: the same angles on l_X and r_X
  give a left-right symmetric pose, and mirroring a motion is swapping l_/r_ keys and negating
  abduction and twist of the centre joints.
  - limbs (hip, knee, ankle, shoulder, elbow, wrist): flexion positive = hip/shoulder forward
    and up, knee bends (shank backward), elbow bends (forearm forward), ankle dorsiflexion
    (toes up), wrist moves the hand forward; abduction positive = away from the midline;
    twist positive = internal rotation (the front turns towards the midline).
  - collars: abduction positive = shoulder elevation (shrug), twist positive = protraction
    (shoulder forward).
  - centre (pelvis, spine, chest, neck, head): flexion positive = bend/pitch forward,
    abduction positive = lean to the body's left, twist positive = turn to the body's left.
  `pelvis` is the root: its rotation (applied after the yaw) orients the whole body, e.g.
  flexion +pi/2 lies the body prone, -pi/2 supine. Joints missing from `rotations` stay at rest.
- Keypoints (`KEYPOINTS`) are joint centres and landmarks; `HUMANML22` and `KINECT32` name the
  ones each skeleton uses. Shared joints (pelvis, hips, knees, ankles, feet, collars/clavicles,
  shoulders, elbows, wrists, neck, head) are one and the same point. The spine has its own
  landmarks: HumanML3D spine1/spine3 are the lumbar/thoracic pivots, spine2 and the Kinect
  navel ride the lumbar segment, the Kinect chest the thoracic one, so the Kinect navel/chest
  do not lie on the HumanML3D spine and their distances change a little when the spine bends.
  The feet also carry heel points (sole level) used for floor contact.
- `root` (T, 3) is the global pelvis position; by default the rest standing height above the
  origin. Feet can be placed two ways: author joint angles alone and let `Keypoints.on_floor`
  and `Keypoints.plant_feet` fix the vertical and horizontal placement from the feet, or author
  the pelvis path and footprints and let `solve_legs` (leg inverse kinematics, feet flat or
  pitched, the knee set by the hip twist or bent towards a pole direction) find hip, knee and
  ankle angles; `rolled_ankle` rolls a planted foot on its heel or ball, `toe_ankle` places a
  foot by its toe point. `solve_arms` does the same for the hands (wrist targets, elbow pole
  directions). `angles_from_quats` inverts `joint_quats` (anatomical angles <-> local
  rotations).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Mapping, Sequence

import numpy as np

from fmsnb.quaternion import qinv, qmul, qrot, qyaw, to_matrix

REF_HEIGHT = 1.75


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths in metres; the defaults are an average adult of stature `REF_HEIGHT`.

    Vertical chain (their sum is the stature): ankle_height (sole to ankle), shank, thigh,
    hip_drop (hip joints below the pelvis point), lumbar (pelvis to spine1), thorax (spine1 to
    spine3), upper_chest (spine3 to neck), neck (neck to head point), crown (head point to top).
    Half widths from the midline: hip_width, collar_width, shoulder_width. Limbs: upper_arm,
    forearm, hand (wrist to hand tip), foot (ankle to toe point, forward), heel (behind ankle).
    """
    ankle_height: float = 0.07
    shank: float = 0.42
    thigh: float = 0.42
    hip_drop: float = 0.07
    lumbar: float = 0.105
    thorax: float = 0.185
    upper_chest: float = 0.245
    neck: float = 0.09
    crown: float = 0.145
    hip_width: float = 0.085
    collar_width: float = 0.05
    shoulder_width: float = 0.185
    upper_arm: float = 0.30
    forearm: float = 0.26
    hand: float = 0.18
    foot: float = 0.15
    heel: float = 0.05

    @property
    def height(self) -> float:
        """Stature: sole to the top of the head in the rest pose."""
        return (self.ankle_height + self.shank + self.thigh + self.hip_drop + self.lumbar
                + self.thorax + self.upper_chest + self.neck + self.crown)

    @property
    def pelvis_height(self) -> float:
        """Height of the pelvis point above the floor when standing at rest."""
        return self.ankle_height + self.shank + self.thigh + self.hip_drop

    def scaled(self, factor: float) -> "BodyShape":
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self)})


def random_shape(rng: np.random.Generator) -> BodyShape:
    """A plausible adult: stature uniform in [1.5, 1.95] m, proportions varied by a few percent.

    Legs, trunk, arms, shoulder and hip breadth vary independently (normal, clipped to +-2.5
    sd); the result is rescaled so that its stature is exactly the drawn one.
    """
    height = rng.uniform(1.5, 1.95)
    legs, trunk, arms, shoulders, hips, head = np.clip(
        rng.normal(1.0, [0.035, 0.035, 0.04, 0.07, 0.08, 0.04]), 0.8, 1.2)
    ref = BodyShape()
    shape = replace(
        ref,
        ankle_height=ref.ankle_height * legs, shank=ref.shank * legs, thigh=ref.thigh * legs,
        lumbar=ref.lumbar * trunk, thorax=ref.thorax * trunk, upper_chest=ref.upper_chest * trunk,
        neck=ref.neck * head, crown=ref.crown * head,
        upper_arm=ref.upper_arm * arms, forearm=ref.forearm * arms, hand=ref.hand * arms,
        shoulder_width=ref.shoulder_width * shoulders, collar_width=ref.collar_width * shoulders,
        hip_width=ref.hip_width * hips)
    return shape.scaled(height / shape.height)


# The articulated joints in parent-before-child order, with their parents.
PARENT = {
    "pelvis": None, "spine": "pelvis", "chest": "spine", "neck": "chest", "head": "neck",
    "l_collar": "chest", "l_shoulder": "l_collar", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
    "r_collar": "chest", "r_shoulder": "r_collar", "r_elbow": "r_shoulder", "r_wrist": "r_elbow",
    "l_hip": "pelvis", "l_knee": "l_hip", "l_ankle": "l_knee",
    "r_hip": "pelvis", "r_knee": "r_hip", "r_ankle": "r_knee",
}
JOINTS = tuple(PARENT)
CENTRE_JOINTS = ("pelvis", "spine", "chest", "neck", "head")
# Signs of the rotations about (X, Z, Y) that make (flexion, abduction, twist) positive in the
# anatomical sense, for the centre and the RIGHT side; the left side negates Z and Y.
_CENTRE_SIGNS = (1.0, -1.0, 1.0)
_RIGHT_SIGNS = {"collar": (-1.0, -1.0, 1.0), "shoulder": (-1.0, -1.0, 1.0),
                "elbow": (-1.0, -1.0, 1.0), "wrist": (-1.0, -1.0, 1.0),
                "hip": (-1.0, -1.0, 1.0), "knee": (1.0, -1.0, 1.0), "ankle": (-1.0, -1.0, 1.0)}


def _signs(joint: str) -> np.ndarray:
    if joint in CENTRE_JOINTS:
        return np.array(_CENTRE_SIGNS)
    flex, abd, twist = _RIGHT_SIGNS[joint[2:]]
    return np.array([flex, abd, twist] if joint[0] == "r" else [flex, -abd, -twist])


def _side(x: float, side: str) -> float:
    """x on the body's left (+X) or right (-X)."""
    return x if side == "l" else -x


def _foot_points(shape: BodyShape) -> dict[str, np.ndarray]:
    """Landmarks of the foot (3,) in the ankle segment's frame: the heel and the ball under the
    toes at sole level, and the toe point (the `foot` keypoint, the Kinect FOOT joint) a little
    above the sole."""
    s = shape
    return {"heel": np.array([0.0, -s.ankle_height, -s.heel]),
            "ball": np.array([0.0, -s.ankle_height, s.foot]),
            "toe": np.array([0.0, -0.8 * s.ankle_height, s.foot])}


def _layout(shape: BodyShape):
    """Rest geometry: pivot offsets {joint: (3,)} from the parent pivot, and keypoints
    {name: (segment, offset (3,))} relative to the pivot of the segment they ride on."""
    s = shape
    head = s.crown / 0.145          # face proportions follow the head size
    foot = _foot_points(s)
    # A mild S-curve: the lumbar spine bows forward (lordosis), the thorax backward (kyphosis).
    pivots = {
        "pelvis": (0.0, 0.0, 0.0),
        "spine": (0.0, s.lumbar, -0.02),
        "chest": (0.0, s.thorax, -0.015),
        "neck": (0.0, s.upper_chest, 0.02),
        "head": (0.0, s.neck, 0.015),
    }
    points = {
        "pelvis": ("pelvis", (0.0, 0.0, 0.0)),
        "spine1": ("spine", (0.0, 0.0, 0.0)),
        "spine_navel": ("spine", (0.0, 0.42 * s.thorax, 0.022)),
        "spine2": ("spine", (0.0, 0.66 * s.thorax, 0.012)),
        "spine3": ("chest", (0.0, 0.0, 0.0)),
        "spine_chest": ("chest", (0.0, 0.34 * s.upper_chest, 0.01)),
        "neck": ("neck", (0.0, 0.0, 0.0)),
        "head": ("head", (0.0, 0.0, 0.0)),
        "nose": ("head", (0.0, 0.025 * head, 0.105 * head)),
    }
    for side in "lr":
        pivots.update({
            f"{side}_collar": (_side(s.collar_width, side), 0.64 * s.upper_chest, 0.0),
            f"{side}_shoulder": (_side(s.shoulder_width - s.collar_width, side),
                                 0.04 * s.upper_chest, -0.015),
            f"{side}_elbow": (0.0, -s.upper_arm, 0.0),
            f"{side}_wrist": (0.0, -s.forearm, 0.0),
            f"{side}_hip": (_side(s.hip_width, side), -s.hip_drop, 0.01),
            f"{side}_knee": (0.0, -s.thigh, 0.0),
            f"{side}_ankle": (0.0, -s.shank, 0.0),
        })
        for joint in ("collar", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            points[f"{side}_{joint}"] = (f"{side}_{joint}", (0.0, 0.0, 0.0))
        points.update({
            # Palm towards the thigh, thumb forward.
            f"{side}_hand": (f"{side}_wrist", (0.0, -0.42 * s.hand, 0.0)),
            f"{side}_handtip": (f"{side}_wrist", (0.0, -s.hand, 0.01)),
            f"{side}_thumb": (f"{side}_wrist", (_side(-0.01, side), -0.3 * s.hand, 0.045)),
            f"{side}_foot": (f"{side}_ankle", foot["toe"]),
            f"{side}_heel": (f"{side}_ankle", foot["heel"]),
            f"{side}_eye": ("head", (_side(0.032, side) * head, 0.05 * head, 0.085 * head)),
            f"{side}_ear": ("head", (_side(0.075, side) * head, 0.035 * head, -0.005 * head)),
        })
    return ({k: np.array(v) for k, v in pivots.items()},
            {k: (seg, np.array(off)) for k, (seg, off) in points.items()})


KEYPOINTS = tuple(_layout(BodyShape())[1])
HUMANML22 = (
    "pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle", "r_ankle",
    "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head", "l_shoulder",
    "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
)
# Azure Kinect order (REFERENCE section 2), written with this module's keypoint names.
KINECT32 = (
    "pelvis", "spine_navel", "spine_chest", "neck",
    "l_collar", "l_shoulder", "l_elbow", "l_wrist", "l_hand", "l_handtip", "l_thumb",
    "r_collar", "r_shoulder", "r_elbow", "r_wrist", "r_hand", "r_handtip", "r_thumb",
    "l_hip", "l_knee", "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle", "r_foot",
    "head", "nose", "l_eye", "l_ear", "r_eye", "r_ear",
)
FOOT_POINTS = ("l_ankle", "l_heel", "l_foot", "r_ankle", "r_heel", "r_foot")
SOLE_POINTS = ("l_heel", "l_foot", "r_heel", "r_foot")
_INDEX = {name: i for i, name in enumerate(KEYPOINTS)}


def _index(names: Sequence[str]) -> list[int]:
    return [_INDEX[n] for n in names]


@dataclass
class Keypoints:
    """Posed keypoints: positions (T, K, 3) in `KEYPOINTS` order, and the global rotation
    quats (T, K, 4) (w first) of the body segment each keypoint rides on."""
    positions: np.ndarray
    quats: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        """The trajectory (T, 3) of one keypoint."""
        if name not in _INDEX:
            raise KeyError(f"unknown keypoint {name!r}; known: {KEYPOINTS}")
        return self.positions[:, _INDEX[name]]

    def humanml22(self) -> np.ndarray:
        """The HumanML3D 22 joints (T, 22, 3)."""
        return self.positions[:, _index(HUMANML22)]

    def kinect32(self) -> np.ndarray:
        """The Azure Kinect 32 joints (T, 32, 3), in this module's world frame (Y up)."""
        return self.positions[:, _index(KINECT32)]

    def kinect32_quats(self) -> np.ndarray:
        """Global segment rotations (T, 32, 4) of the Kinect joints, w first."""
        return self.quats[:, _index(KINECT32)]

    def shifted(self, offset: np.ndarray) -> "Keypoints":
        """Translated by offset (3,) or per frame (T, 3)."""
        offset = np.asarray(offset, dtype=np.float64)
        return Keypoints(self.positions + offset.reshape(-1, 1, 3), self.quats)

    def on_floor(self, per_frame: bool = False, points: Sequence[str] = FOOT_POINTS) -> "Keypoints":
        """Shifted vertically so the lowest of `points` is at y = 0: over the whole clip (keeps
        jumps and flight), or in every frame (for motions where a foot is always down)."""
        low = self.positions[:, _index(points), 1].min(axis=1)
        dy = low if per_frame else np.full_like(low, low.min())
        return self.shifted(np.stack([np.zeros_like(dy), -dy, np.zeros_like(dy)], axis=-1))

    def plant_feet(self, tolerance: float = 0.02) -> "Keypoints":
        """Shifted horizontally so the supporting sole point does not slide.

        In each frame the lowest sole point (heels, toes) supports the body if it is within
        `tolerance` of the clip's floor; the body moves by minus that point's horizontal step to
        the next frame. Steps in flight (nothing supporting) keep the last supported velocity, so
        runs and hops carry their momentum. Call it after `on_floor`.
        """
        soles = self.positions[:, _index(SOLE_POINTS)]          # (T, 4, 3)
        low = soles[..., 1].argmin(axis=1)
        frames = np.arange(len(soles) - 1)
        support = soles[frames, low[:-1]]
        step = soles[frames + 1, low[:-1]] - support
        step[:, 1] = 0.0
        grounded = support[:, 1] < soles[..., 1].min() + tolerance
        # Forward-fill flight frames with the last grounded step (zero before any contact).
        last = np.maximum.accumulate(np.where(grounded, frames, -1))
        velocity = np.where((last >= 0)[:, None], -step[np.maximum(last, 0)], 0.0)
        shift = np.concatenate([np.zeros((1, 3)), np.cumsum(velocity, axis=0)])
        return self.shifted(shift)


def _axis_quat(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotations (T, 4) by `angle` (T,) about world axis 0 (X), 1 (Y) or 2 (Z)."""
    q = np.zeros(angle.shape + (4,))
    q[..., 0] = np.cos(angle / 2)
    q[..., 1 + axis] = np.sin(angle / 2)
    return q


def joint_quats(joint: str, angles: np.ndarray) -> np.ndarray:
    """Local rotations (T, 4) of `joint` from its anatomical angles (T, 3)."""
    flex, abd, twist = (np.asarray(angles, dtype=np.float64) * _signs(joint)).T
    return qmul(qmul(_axis_quat(0, flex), _axis_quat(2, abd)), _axis_quat(1, twist))


def angles_from_quats(joint: str, quats: np.ndarray) -> np.ndarray:
    """The inverse of `joint_quats`: anatomical angles (T, 3) of local rotations (T, 4).

    Abduction comes back in [-pi/2, pi/2], flexion and twist in (-pi, pi].
    """
    return _angles_from_matrix(joint, to_matrix(np.asarray(quats, dtype=np.float64)))


def _angles_from_matrix(joint: str, m: np.ndarray) -> np.ndarray:
    """Anatomical angles (T, 3) of `joint` whose local rotation matrix is m (T, 3, 3)."""
    # R = Rx(a) Rz(b) Ry(c) has R[0,1] = -sin b, R[2,1]/R[1,1] = tan a, R[0,2]/R[0,0] = tan c.
    a = np.arctan2(m[..., 2, 1], m[..., 1, 1])
    b = np.arcsin(np.clip(-m[..., 0, 1], -1.0, 1.0))
    c = np.arctan2(m[..., 0, 2], m[..., 0, 0])
    return np.stack([a, b, c], axis=-1) * _signs(joint)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _bend(upper: float, lower: float, reach: np.ndarray) -> np.ndarray:
    """The middle joint's bend (T,) (0 = straight) with which a limb of segments `upper` and
    `lower` spans `reach` (T,), by the law of cosines."""
    return np.arccos(np.clip((reach ** 2 - upper ** 2 - lower ** 2) / (2 * upper * lower),
                             -1.0, 1.0))


def _leg_angles(shape: BodyShape, side: str, target: np.ndarray, twist: np.ndarray):
    """Hip (T, 3) and knee (T, 3) angles putting the ankle at `target` (T, 3), the ankle's
    offset from the hip in the pelvis frame, for a given hip twist (T,). Out of reach targets
    are approached along the same direction (the leg straight or fully folded)."""
    t, s = shape.thigh, shape.shank
    reach = np.clip(np.linalg.norm(target, axis=-1), abs(t - s) + 1e-6, (t + s) * (1 - 1e-9))
    target = target / np.linalg.norm(target, axis=-1, keepdims=True) * reach[:, None]
    knee = _bend(t, s, reach)
    # The ankle relative to the hip with the knee bent and the hip twisted, before flex/abd.
    sf, sa, st = _signs(f"{side}_hip")
    shank = np.stack([np.zeros_like(knee), -s * np.cos(knee), -s * np.sin(knee)], -1)
    u = qrot(_axis_quat(1, st * twist), shank + [0.0, -t, 0.0])
    # Rz(phi) must bring u's x onto the target's: ux cos(phi) - uy sin(phi) = x.
    radius = np.hypot(u[:, 0], u[:, 1])
    gamma = np.arctan2(u[:, 1], u[:, 0])
    base = np.arccos(np.clip(target[:, 0] / radius, -1.0, 1.0))
    phi = _wrap(np.where(np.abs(_wrap(base - gamma)) <= np.abs(_wrap(-base - gamma)),
                         base - gamma, -base - gamma))
    w = qrot(_axis_quat(2, phi), u)
    # Rx(f) then turns the (y, z) part of w onto the target's.
    f = _wrap(np.arctan2(target[:, 2], target[:, 1]) - np.arctan2(w[:, 2], w[:, 1]))
    hip = np.stack([sf * f, sa * phi, twist], -1)
    return hip, np.stack([knee, np.zeros_like(knee), np.zeros_like(knee)], -1)


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frames (T, 3, 3) with columns: a, b made orthogonal to a, and a x b."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b - (a * b).sum(-1, keepdims=True) * a
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def _pole_angles(joint: str, mid: str, target: np.ndarray, pole: np.ndarray, upper: float,
                 lower: float) -> tuple[np.ndarray, np.ndarray]:
    """Angles (T, 3) of `joint` and of `mid` (flexion only) putting the end pivot of the limb
    joint -> mid -> end (segment lengths `upper`, `lower`) at `target` (T, 3), with the middle
    joint bent towards the direction `pole` (T, 3); both are given in the frame of `joint`'s
    parent segment, `target` relative to `joint`'s pivot. Out-of-reach targets get the
    straightest reachable limb aimed at the target (short of fully straight, where the bend
    plane and so the solution would be undefined)."""
    length = np.linalg.norm(target, axis=-1)
    reach = np.clip(length, abs(upper - lower) + 1e-3, 0.9995 * (upper + lower))
    bend = _bend(upper, lower, reach)
    bend3 = np.stack([bend, 0 * bend, 0 * bend], axis=-1)
    # Wanted: middle joint on the pole's side of the root->end line, end on the target line.
    axis = target / length[:, None]
    cos_up = np.clip((upper ** 2 + reach ** 2 - lower ** 2) / (2 * upper * reach), -1, 1)
    side = pole - (pole * axis).sum(-1, keepdims=True) * axis
    side /= np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    middle = upper * (cos_up[:, None] * axis + np.sqrt(1 - cos_up ** 2)[:, None] * side)
    # The same triangle with the joint at rest: upper segment down, lower one bent by `bend`.
    rest_mid = np.broadcast_to([0.0, -upper, 0.0], target.shape)
    rest_end = rest_mid + qrot(joint_quats(mid, bend3),
                               np.broadcast_to([0.0, -lower, 0.0], target.shape))
    m = _frame(middle, axis * reach[:, None]) @ np.swapaxes(_frame(rest_mid, rest_end), -1, -2)
    return _angles_from_matrix(joint, m), bend3


def _per_side(name: str, targets: Mapping[str, np.ndarray], T: int):
    """(side, world position (T, 3)) pairs of a {"l"/"r": (3,) or (T, 3)} mapping."""
    for side, target in targets.items():
        if side not in ("l", "r"):
            raise ValueError(f"{name} keys must be 'l' or 'r', got {side!r}")
        yield side, np.broadcast_to(np.asarray(target, dtype=np.float64), (T, 3))


def _foot_quat(heading: np.ndarray, pitch) -> np.ndarray:
    """Global rotations (T, 4) of a foot pointing along `heading` (T,), its toes lifted by
    `pitch` (scalar or (T,); negative: heel raised)."""
    return qmul(qyaw(heading), _axis_quat(0, -np.broadcast_to(pitch, np.shape(heading))))


def solve_legs(shape: BodyShape, rotations: Mapping[str, np.ndarray], root: np.ndarray,
               yaw: np.ndarray, ankles: Mapping[str, np.ndarray],
               toe_out: Mapping[str, np.ndarray] | None = None,
               foot_pitch: Mapping[str, np.ndarray] | None = None,
               knee_poles: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Leg inverse kinematics: the rotations with hip, knee and ankle angles that put each
    ankle of `ankles` {"l"/"r": world position (T, 3)} in place, the foot flat on the ground
    and pointing along the body's heading (yaw).

    Where the knee points is set by the hip twist given in `rotations`, which is kept, or,
    for the sides in `knee_poles` {side: world direction (3,) or (T, 3)}, by that direction:
    the knee bends towards it (knees caving in, turned out, a leg folded under the body).
    `toe_out` {side: radians} turns a foot's toes away from the midline, `foot_pitch`
    {side: radians} lifts them (negative: heel raised). For a flat foot on the floor put the
    ankle at y = shape.ankle_height. Feet authored this way never slide, which makes squats,
    lunges and steps exact.
    """
    rotations = {k: np.asarray(v, dtype=np.float64) for k, v in rotations.items()}
    kp = pose(shape, rotations, root, yaw)
    T = len(kp.positions)
    pelvis = kp.quats[:, _INDEX["pelvis"]]
    to_pelvis = qinv(pelvis)
    heading = np.broadcast_to(0.0 if yaw is None else yaw, (T,))
    poles = knee_poles or {}
    for side, ankle in _per_side("ankles", ankles, T):
        target = qrot(to_pelvis, ankle - kp[f"{side}_hip"])
        if side in poles:
            pole = qrot(to_pelvis, np.broadcast_to(poles[side], (T, 3)))
            hip, knee = _pole_angles(f"{side}_hip", f"{side}_knee", target, pole, shape.thigh,
                                     shape.shank)
        else:
            twist = np.broadcast_to(rotations.get(f"{side}_hip", np.zeros(3)), (T, 3))[:, 2]
            hip, knee = _leg_angles(shape, side, target, twist)
        out = _side(1.0, side) * np.broadcast_to((toe_out or {}).get(side, 0.0), (T,))
        foot = _foot_quat(heading + out, (foot_pitch or {}).get(side, 0.0))
        thigh = qmul(pelvis, joint_quats(f"{side}_hip", hip))
        shank = qmul(thigh, joint_quats(f"{side}_knee", knee))
        ankle_angles = angles_from_quats(f"{side}_ankle", qmul(qinv(shank), foot))
        rotations.update({f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle_angles})
    return rotations


def solve_arms(shape: BodyShape, rotations: Mapping[str, np.ndarray], root: np.ndarray,
               yaw: np.ndarray, wrists: Mapping[str, np.ndarray],
               elbow_poles: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arm inverse kinematics: the rotations with shoulder and elbow angles that put each wrist
    of `wrists` {"l"/"r": world position (T, 3)} in place, the elbow bent towards the world
    direction `elbow_poles[side]` (3,) or (T, 3) (out to the side in a push-up, up when the
    hand reaches down the back). Collars, wrists and all else in `rotations` are kept; wrists
    out of reach get the straightest arm, reaching towards them."""
    rotations = {k: np.asarray(v, dtype=np.float64) for k, v in rotations.items()}
    kp = pose(shape, rotations, root, yaw)
    T = len(kp.positions)
    for side, wrist in _per_side("wrists", wrists, T):
        if side not in elbow_poles:
            raise ValueError(f"elbow_poles has no direction for the {side!r} arm")
        to_collar = qinv(kp.quats[:, _INDEX[f"{side}_collar"]])
        target = qrot(to_collar, wrist - kp[f"{side}_shoulder"])
        pole = qrot(to_collar, np.broadcast_to(elbow_poles[side], (T, 3)))
        rotations[f"{side}_shoulder"], rotations[f"{side}_elbow"] = _pole_angles(
            f"{side}_shoulder", f"{side}_elbow", target, pole, shape.upper_arm, shape.forearm)
    return rotations


def rolled_ankle(shape: BodyShape, footprint: np.ndarray, heading: np.ndarray,
                 pitch: np.ndarray) -> np.ndarray:
    """Ankle positions (T, 3) of a foot rolled by `pitch` (T,) radians on its sole: about the
    heel when the toes are up (pitch > 0, heel strike), about the ball when the heel is raised
    (pitch < 0, push-off), so that the sole point in contact stays where it is on the flat foot
    whose ankle is at `footprint` (T, 3) and which points along `heading` (T,). Feed the result
    and the same pitch to `solve_legs` (`ankles`, `foot_pitch`)."""
    pitch = np.asarray(pitch, dtype=np.float64)
    heading = np.broadcast_to(np.asarray(heading, dtype=np.float64), pitch.shape)
    sole = _foot_points(shape)
    pivot = np.where((pitch > 0)[:, None], sole["heel"], sole["ball"])
    return footprint + qrot(qyaw(heading), pivot) - qrot(_foot_quat(heading, pitch), pivot)


def toe_ankle(shape: BodyShape, toe: np.ndarray, heading: np.ndarray, pitch=0.0) -> np.ndarray:
    """Ankle positions (T, 3) of a foot pointing along `heading` (T,) whose toe point (the
    `foot` keypoint, the Kinect FOOT joint) is at `toe` (T, 3), pitched by `pitch` (scalar or
    (T,), radians, negative: heel raised with the foot pivoting on its toes). Feed the result
    and the same pitch to `solve_legs` (`ankles`, `foot_pitch`)."""
    toe = np.asarray(toe, dtype=np.float64)
    heading = np.broadcast_to(np.asarray(heading, dtype=np.float64), toe.shape[:-1])
    return toe - qrot(_foot_quat(heading, pitch), np.broadcast_to(_foot_points(shape)["toe"],
                                                                  toe.shape))


def _frames(rotations: Mapping[str, np.ndarray], root, yaw) -> int:
    """The frame count T implied by the per-frame arrays given (1 if all are constant)."""
    lengths = {len(a) for a in map(np.asarray, rotations.values()) if a.ndim == 2}
    if root is not None and np.ndim(root) == 2:
        lengths.add(len(root))
    if yaw is not None and np.ndim(yaw) == 1:
        lengths.add(len(yaw))
    if len(lengths) > 1:
        raise ValueError(f"rotations, root and yaw disagree on the frame count: {sorted(lengths)}")
    return lengths.pop() if lengths else 1


def pose(shape: BodyShape, rotations: Mapping[str, np.ndarray] | None = None,
         root: np.ndarray | None = None, yaw: np.ndarray | None = None) -> Keypoints:
    """Pose the body: joint angles {joint: (T, 3) or (3,)}, pelvis positions root (T, 3) (default:
    standing height above the origin), yaw (T,) about +Y (default 0) -> Keypoints (T frames)."""
    rotations = dict(rotations or {})
    unknown = sorted(set(rotations) - set(JOINTS))
    if unknown:
        raise ValueError(f"unknown joint(s) {unknown}; articulated joints are {JOINTS}")
    T = _frames(rotations, root, yaw)
    root = np.broadcast_to([0.0, shape.pelvis_height, 0.0] if root is None else root, (T, 3))
    yaw = np.broadcast_to(0.0 if yaw is None else yaw, (T,))
    pivots, points = _layout(shape)

    position, rotation = {}, {}
    for joint, parent in PARENT.items():
        angles = np.asarray(rotations.get(joint, np.zeros(3)), dtype=np.float64)
        if angles.shape not in ((3,), (T, 3)):
            raise ValueError(f"rotations[{joint!r}] must have shape (3,) or ({T}, 3), "
                             f"got {angles.shape}")
        local = joint_quats(joint, np.broadcast_to(angles, (T, 3)))
        if parent is None:
            rotation[joint] = qmul(qyaw(yaw), local)
            position[joint] = np.array(root, dtype=np.float64)
        else:
            rotation[joint] = qmul(rotation[parent], local)
            position[joint] = position[parent] + qrot(rotation[parent], np.broadcast_to(
                pivots[joint], (T, 3)))

    positions = np.empty((T, len(KEYPOINTS), 3))
    quats = np.empty((T, len(KEYPOINTS), 4))
    for k, name in enumerate(KEYPOINTS):
        segment, offset = points[name]
        offset = np.broadcast_to(offset, (T, 3))
        positions[:, k] = position[segment] + qrot(rotation[segment], offset)
        quats[:, k] = rotation[segment]
    return Keypoints(positions, quats)
