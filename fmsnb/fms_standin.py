"""An embedded, procedural stand-in for the FMS dataset, written in its published on-disk format.

The real FMS dataset (Xing et al. 2022) is released on request only, so the book runs on this
stand-in by default. It is NOT the real dataset: subjects are `fmsnb.body` figures of random
proportions that perform all 15 movements with grade-specific quality (a grade-3 deep squat
reaches full depth with an upright torso and flat heels, a grade-1 one stays shallow, leans
and drifts to one side, and so on for every test), recorded by two simulated Azure Kinects.
Everything a real file carries is reproduced so that `fmsnb.fms` reads both alike: the file
names, the JSON keys (with the misspelled `original_frmae_num`), millimetres in the depth
camera's frame (+X right, +Y down, +Z away from the camera) with the depth camera pitched
`CAMERA_TILT_DEG` downward, 30 fps, joint orientations, 2D colour pixels, confidence levels,
frames without a body, and three expert grades per episode that occasionally disagree.
The motion is authored in a world frame (metres, +Y up, floor at y = 0) and then seen by each
camera with its own sensor jitter.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.stats import norm
from tqdm.auto import tqdm

from fmsnb.body import KEYPOINTS, PARENT, BodyShape, Keypoints, joint_quats, pose, random_shape
from fmsnb.fms import ESSENTIAL_JOINTS, FPS, KINECT_INDEX, MOVEMENTS, VIEW_FOLDERS
from fmsnb.quaternion import qinv, qmul, qrot, qyaw, to_matrix

# Camera rig (metres, world frame). Both devices stand level at CAMERA_HEIGHT; their depth
# cameras look CAMERA_TILT_DEG below the horizontal, like the Azure Kinect's depth camera
# relative to its colour camera. The front camera faces the subject from FRONT_DISTANCE; the
# side camera looks at the subject's left side from SIDE_DISTANCE.
CAMERA_TILT_DEG = 6.0
CAMERA_HEIGHT = 1.0
FRONT_DISTANCE = 2.8
SIDE_DISTANCE = 2.5
# Colour camera intrinsics for `joint_position_2d_color` (1280 x 720 pinhole).
COLOUR_SIZE = (1280, 720)
COLOUR_FOCAL = 605.0
BOARD_HEIGHT = 0.05  # the 2-inch board under the heels in m02
GRADE_SHARES = (0.20, 0.55, 0.25)  # target shares of grades 1, 2, 3
EXPERT_SLIP = 0.05  # chance that one expert grades one step lower (and again, one higher)
JITTER_MM = 3.0  # sensor noise of a well-seen joint; extremities and face get more


@dataclass(frozen=True)
class Camera:
    """A depth camera at `position` (world, m) looking along the horizontal `heading`, pitched
    down by `tilt_deg`. Camera axes: +X right, +Y down, +Z along the optical axis."""
    name: str
    position: tuple[float, float, float]
    heading: tuple[float, float, float]
    tilt_deg: float = CAMERA_TILT_DEG

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) world-to-camera rotation; its rows are the camera axes in world coordinates."""
        t = np.radians(self.tilt_deg)
        h, up = np.asarray(self.heading, float), np.array([0.0, 1.0, 0.0])
        forward = np.cos(t) * h - np.sin(t) * up
        down = -np.cos(t) * up - np.sin(t) * h
        return np.stack([np.cross(down, forward), down, forward])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in metres -> camera coordinates (..., 3) in millimetres."""
        return 1000.0 * (np.asarray(points) - np.asarray(self.position)) @ self.rotation.T

    def to_colour_pixels(self, points_mm: np.ndarray) -> np.ndarray:
        """Camera points (..., 3) mm -> colour image pixels (..., 2), a level pinhole camera
        (the depth camera's tilt undone) 32 mm to the left of the depth camera."""
        t = np.radians(self.tilt_deg)
        c, s = np.cos(t), np.sin(t)
        untilt = np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])
        p = points_mm @ untilt.T + np.array([32.0, 0.0, 0.0])
        centre = np.array(COLOUR_SIZE) / 2.0
        return COLOUR_FOCAL * p[..., :2] / np.maximum(p[..., 2:], 1.0) + centre


FRONT_CAMERA = Camera("front", (0.0, CAMERA_HEIGHT, FRONT_DISTANCE), (0.0, 0.0, -1.0))
SIDE_CAMERA = Camera("side", (SIDE_DISTANCE, CAMERA_HEIGHT, 0.0), (-1.0, 0.0, 0.0))
CAMERAS = {"front": FRONT_CAMERA, "side": SIDE_CAMERA}

# ---------------------------------------------------------------------------------------------
# Authoring tools: time envelopes, slow noise, limb inverse kinematics.

_KP = {name: i for i, name in enumerate(KEYPOINTS)}
_UP = np.array([0.0, 1.0, 0.0])


def _ramp(t: np.ndarray, start: float, duration: float) -> np.ndarray:
    """Smoothstep from 0 (before `start`) to 1 (after `start + duration`), t in seconds."""
    x = np.clip((t - start) / max(duration, 1e-6), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _phases(durations: list[float], tempo: float):
    """Frame times t (T,) in s for phases lasting `durations` * tempo, and `bump(i, j)`: an
    envelope rising 0 -> 1 during phase i and falling back to 0 during phase j."""
    starts = np.concatenate([[0.0], np.cumsum(np.asarray(durations) * tempo)])
    t = np.arange(int(round(starts[-1] * FPS))) / FPS

    def bump(i: int, j: int) -> np.ndarray:
        return (_ramp(t, starts[i], starts[i + 1] - starts[i])
                - _ramp(t, starts[j], starts[j + 1] - starts[j]))
    return t, bump


def _wobble(rng: np.random.Generator, T: int, sd: float, sigma: float = 10.0) -> np.ndarray:
    """Slow random drift (T,) with standard deviation `sd` (Gaussian smoothing in frames)."""
    noise = gaussian_filter1d(rng.normal(size=T), sigma, mode="nearest")
    return noise / max(noise.std(), 1e-9) * sd


def _axis_signs(joint: str) -> np.ndarray:
    """For `joint`, the sign with which body.py applies (flexion, abduction, twist) about its
    rotation axes (X, Z, Y), read off unit rotations so that no convention is restated here."""
    q = joint_quats(joint, np.eye(3))
    return np.sign(q[[0, 1, 2], [1, 3, 2]])


def _angles(joint: str, m: np.ndarray) -> np.ndarray:
    """Anatomical angles (T, 3) of `joint` whose local rotation matrix is m (T, 3, 3), inverting
    body.py's R = Rx(flexion) Rz(abduction) Ry(twist)."""
    flex = np.arctan2(m[..., 2, 1], m[..., 1, 1])
    abd = np.arcsin(np.clip(-m[..., 0, 1], -1.0, 1.0))
    twist = np.arctan2(m[..., 0, 2], m[..., 0, 0])
    return np.stack([flex, abd, twist], axis=-1) * _axis_signs(joint)


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frames (T, 3, 3) with columns: a, b made orthogonal to a, and a x b."""
    a = _unit(a)
    b = _unit(b - (a * b).sum(-1, keepdims=True) * a)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def _limb_ik(kp: Keypoints, joint: str, mid: str, target: np.ndarray, pole: np.ndarray,
             upper: float, lower: float) -> tuple[np.ndarray, np.ndarray]:
    """Angles (T, 3) of `joint` and of `mid` (flexion only) putting the limb's end pivot (ankle
    or wrist) at `target` (T, 3) with the middle joint (knee or elbow) bent towards the world
    direction `pole` (3,) or (T, 3). `kp` needs the final pose of the limb's parent segment
    only. Out-of-reach targets get the straightest reachable limb, aimed at the target."""
    parent = kp.quats[:, _KP[PARENT[joint]]]
    v = qrot(qinv(parent), target - kp.positions[:, _KP[joint]])
    p = qrot(qinv(parent), np.broadcast_to(pole, v.shape))
    length = np.linalg.norm(v, axis=-1)
    reach = np.clip(length, abs(upper - lower) + 1e-3, 0.9995 * (upper + lower))
    cos_bend = (reach ** 2 - upper ** 2 - lower ** 2) / (2 * upper * lower)
    bend = np.arccos(np.clip(cos_bend, -1.0, 1.0))
    bend3 = np.stack([bend, 0 * bend, 0 * bend], axis=-1)
    # Wanted: middle joint on the pole's side of the root->end line, end on the target line.
    axis = v / length[:, None]
    cos_up = np.clip((upper ** 2 + reach ** 2 - lower ** 2) / (2 * upper * reach), -1, 1)
    side = p - (p * axis).sum(-1, keepdims=True) * axis
    side /= np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    middle = upper * (cos_up[:, None] * axis + np.sqrt(1 - cos_up ** 2)[:, None] * side)
    # The same triangle with the joint at rest: upper segment down, lower one bent by `bend`.
    rest_mid = np.broadcast_to([0.0, -upper, 0.0], v.shape)
    rest_end = rest_mid + qrot(joint_quats(mid, bend3), np.broadcast_to([0.0, -lower, 0.0],
                                                                          v.shape))
    m = _frame(middle, axis * reach[:, None]) @ np.swapaxes(_frame(rest_mid, rest_end), -1, -2)
    return _angles(joint, m), bend3


def _foot_quat(yaw: np.ndarray, pitch_up: np.ndarray) -> np.ndarray:
    """Global rotation (T, 4) of a foot turned by `yaw` and pitched toes-up by `pitch_up`."""
    half = -np.broadcast_to(pitch_up, yaw.shape) / 2
    return qmul(qyaw(yaw), np.stack([np.cos(half), np.sin(half), 0 * half, 0 * half], -1))


def _ankle_over(toe: np.ndarray, shape: BodyShape, yaw: np.ndarray, pitch_up=0.0) -> np.ndarray:
    """Ankle pivot (T, 3) of a foot pitched by `pitch_up` whose toe point (the Kinect FOOT
    joint) is at `toe` (T, 3)."""
    offset = np.broadcast_to([0.0, -0.8 * shape.ankle_height, shape.foot], toe.shape)
    return toe - qrot(_foot_quat(yaw, pitch_up), offset)


def _plant_leg(kp: Keypoints, rot: dict, side: str, shape: BodyShape, ankle: np.ndarray,
               yaw: np.ndarray, pitch_up=0.0, pole: np.ndarray | None = None) -> None:
    """Set rot[hip], rot[knee], rot[ankle] so that the ankle pivot is at `ankle` (T, 3), the
    knee points along `pole` (default: where the body faces) and the foot is pitched by
    `pitch_up` (0 = flat) in the direction the body faces."""
    hip, knee, foot = f"{side}_hip", f"{side}_knee", f"{side}_ankle"
    pole = _heading(yaw)[0] if pole is None else pole
    rot[hip], rot[knee] = _limb_ik(kp, hip, knee, ankle, pole, shape.thigh, shape.shank)
    shank = qmul(qmul(kp.quats[:, _KP[PARENT[hip]]], joint_quats(hip, rot[hip])),
                 joint_quats(knee, rot[knee]))
    rot[foot] = _angles(foot, to_matrix(qmul(qinv(shank), _foot_quat(yaw, pitch_up))))


def _reach_arm(kp: Keypoints, rot: dict, side: str, shape: BodyShape, wrist: np.ndarray,
               pole: np.ndarray) -> None:
    """Set rot[shoulder], rot[elbow] so that the wrist pivot is at `wrist` (T, 3)."""
    rot[f"{side}_shoulder"], rot[f"{side}_elbow"] = _limb_ik(
        kp, f"{side}_shoulder", f"{side}_elbow", wrist, pole, shape.upper_arm, shape.forearm)


def _heading(yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward (T, 3) and left (T, 3) horizontal unit vectors of a body turned by `yaw`."""
    zero = np.zeros_like(yaw)
    return (np.stack([np.sin(yaw), zero, np.cos(yaw)], -1),
            np.stack([np.cos(yaw), zero, -np.sin(yaw)], -1))


def _local(kp: Keypoints, segment_point: str, offset: np.ndarray) -> np.ndarray:
    """World positions (T, 3) of `offset` (T, 3) or (3,) given in the frame of the segment that
    keypoint `segment_point` rides on, relative to that keypoint."""
    i = _KP[segment_point]
    return kp.positions[:, i] + qrot(kp.quats[:, i], np.broadcast_to(offset, (len(kp.positions),
                                                                               3)))


def _lerp(a: float, b: float, q) -> np.ndarray:
    """a at q = 0, b at q = 1."""
    return a + (b - a) * np.asarray(q, dtype=float)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _sign(side: str) -> float:
    """+1 for the body's left (+X at rest), -1 for its right."""
    return 1.0 if side == "l" else -1.0


def _other(side: str) -> str:
    return "r" if side == "l" else "l"


def _angles3(flex=0.0, abd=0.0, twist=0.0, T: int = 1) -> np.ndarray:
    """Angle curves (T, 3) from scalars or (T,) arrays."""
    return np.stack(np.broadcast_arrays(*(np.broadcast_to(a, (T,)) for a in (flex, abd, twist))),
                    axis=-1).astype(float)


def _trunk(rot: dict, T: int, flex=0.0, lean=0.0, turn=0.0, head=0.0) -> None:
    """Spread trunk flexion / side lean / rotation (radians) over spine and chest; the neck
    takes back most of it so the gaze stays level, plus `head` of extra head flexion."""
    rot["spine"] = _angles3(0.5 * np.asarray(flex), 0.5 * np.asarray(lean),
                            0.5 * np.asarray(turn), T)
    rot["chest"] = rot["spine"].copy()
    rot["neck"] = _angles3(-0.6 * np.asarray(flex) + head, -0.5 * np.asarray(lean), 0.0, T)


@dataclass
class Take:
    """What one performance needs: the subject's body, the grade shown and its variability."""
    shape: BodyShape
    grade: int
    quality: float      # 0..1, continuous within the grade's band; drives every compensation
    tempo: float        # duration factor, >1 is slower
    rng: np.random.Generator


def _standing_place(take: Take, T: int):
    """Yaw (T,) roughly facing the front camera (+Z), a floor spot (3,) near the origin, and
    the body's forward and left directions (T, 3)."""
    yaw = np.full(T, take.rng.normal(0.0, np.radians(5)))
    spot = np.array([take.rng.uniform(-0.15, 0.15), 0.0, take.rng.uniform(-0.2, 0.1)])
    return (yaw, spot) + _heading(yaw)


def _lying_place(take: Take, T: int, supine: bool):
    """Yaw (T,) laying the body along world X with the head towards -X (profile to the front
    camera, feet towards the side camera), a floor spot (3,), forward and left (T, 3)."""
    yaw = np.full(T, (np.pi / 2 if supine else -np.pi / 2) + take.rng.normal(0, np.radians(4)))
    spot = np.array([take.rng.uniform(0.1, 0.4), 0.0, take.rng.uniform(-0.15, 0.15)])
    return (yaw, spot) + _heading(yaw)


def _feet_together(take: Take, spot, yaw, fwd, left, width: float):
    """Ankle pivots {side: (T, 3)} of flat feet `width` either side of the midline."""
    s = take.shape
    return {side: _ankle_over(spot + _sign(side) * width * left + 0.1 * fwd
                              + [0.0, 0.2 * s.ankle_height, 0.0], s, yaw)
            for side in "lr"}


# ---------------------------------------------------------------------------------------------
# The seven tests. Each returns the posed world keypoints (metres, +Y up, floor at y = 0).
# `take.quality` (0 poor .. 1 perfect) sets every amplitude; grade 1 additionally shows the
# failures that make a test "incomplete" (balance loss, not completing the push-up).

def deep_squat(take: Take, board: bool) -> Keypoints:
    """Dowel overhead, squat as deep as possible, stand up (m01 heels down, m02 heels on a
    board). Quality: depth, torso lean beyond the shin angle, arms falling forward, heels
    lifting (m01), knees caving in, and a lateral shift."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.5, 1.4, 0.5, 1.3, 0.5], take.tempo)
    T, down = len(t), bump(1, 3)
    yaw, spot, fwd, left = _standing_place(take, T)
    # Sagittal chain from the ankles up: shin lean, knee flexion, thigh angle, torso angle.
    knee = np.radians(4 + (_lerp(60, 135, q) + rng.normal(0, 4)) * down)
    shin = np.radians(3 + (_lerp(20, 34, q) + (8 if board else 0) + rng.normal(0, 2)) * down)
    heel_up = (np.full(T, np.arcsin(BOARD_HEIGHT / (s.heel + s.foot))) if board
               else np.radians(_lerp(14, 0, np.clip(q / 0.6, 0, 1))) * down)
    torso = shin + np.radians(_lerp(38, 4, q) + rng.normal(0, 3)) * down
    width = 0.9 * s.shoulder_width
    ankles = {side: _ankle_over(spot + _sign(side) * width * left + 0.12 * fwd
                                + [0.0, 0.2 * s.ankle_height, 0.0], s, yaw, -heel_up)
              for side in "lr"}
    base = (ankles["l"] + ankles["r"]) / 2
    thigh = knee - shin
    pelvis_pitch = 0.6 * torso
    ahead = (s.shank * np.sin(shin) - s.thigh * np.sin(thigh)
             + s.hip_drop * np.sin(pelvis_pitch))
    height = (s.shank * np.cos(shin) + s.thigh * np.cos(thigh)
              + s.hip_drop * np.cos(pelvis_pitch)) * np.cos(np.arctan2(width - s.hip_width,
                                                                       s.thigh + s.shank))
    drift = rng.choice([-1.0, 1.0])
    shift = _lerp(0.07, 0.0, q) * drift * down + _wobble(rng, T, _lerp(0.008, 0.002, q))
    root = base + ahead[:, None] * fwd + shift[:, None] * left + (height[:, None] - 0.005) * _UP
    rot = {"pelvis": _angles3(pelvis_pitch, T=T)}
    _trunk(rot, T, flex=0.4 * torso, lean=_lerp(0.15, 0.0, q) * drift * down)
    lift = np.radians(172 - _lerp(45, 0, q) * down)
    for side in "lr":
        rot[f"{side}_shoulder"] = _angles3(lift, 0.3, 0.0, T)
        rot[f"{side}_wrist"] = _angles3(-0.3, T=T)
    kp = pose(s, rot, root, yaw)
    cave = np.tan(np.radians(_lerp(25, 0, q))) * down
    for side in "lr":
        pole = fwd - _sign(side) * cave[:, None] * left
        _plant_leg(kp, rot, side, s, ankles[side], yaw, -heel_up, pole)
    return pose(s, rot, root, yaw)


def hurdle_step(take: Take, side: str) -> Keypoints:
    """Dowel on the shoulders, step the `side` leg over a hurdle at shin height, touch the heel
    down beyond it and return. Quality: foot clearance (grade 1 catches the hurdle), stance
    knee bend, trunk lean and sway, the swing leg turned out, the dowel tilting; grade 1 often
    loses balance and taps the foot down mid-swing."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.5, 1.1, 0.4, 1.1, 0.5], take.tempo)
    T = len(t)
    over = bump(1, 3)                      # 0 at the start, 1 with the heel touching beyond
    active = np.clip(over * 3, 0, 1)       # weight on the stance leg
    yaw, spot, fwd, left = _standing_place(take, T)
    sgn = _sign(side)
    ankles = _feet_together(take, spot, yaw, fwd, left, s.hip_width)
    scale = s.height / 1.75
    arc = np.sin(np.pi * over)
    if take.grade == 1 and rng.random() < 0.7:      # a tap down mid-swing
        arc = arc * (1 - 0.75 * np.exp(-0.5 * ((t - t[np.argmax(arc)] + 0.15) / 0.12) ** 2))
    touch_pitch = 0.3
    clearance = s.shank + s.ankle_height + _lerp(-0.06, 0.10, q) * scale
    heel_down = s.ankle_height * (np.cos(touch_pitch) - 1) + s.heel * np.sin(touch_pitch)
    swing = (ankles[side] + (0.38 * scale * over)[:, None] * fwd
             + (sgn * _lerp(0.12, 0.0, q) * arc)[:, None] * left
             + ((clearance - s.ankle_height) * arc + heel_down * over)[:, None] * _UP)
    sway = _lerp(0.035, 0.005, q)
    shift = (-sgn * 0.85 * s.hip_width * active + _wobble(rng, T, sway) * active)
    drop = (0.012 + _lerp(0.06, 0.0, q)) * active
    root = (spot + (0.1 + _wobble(rng, T, sway) * active)[:, None] * fwd
            + shift[:, None] * left + (s.pelvis_height - 0.008 - drop)[:, None] * _UP)
    rot = {}
    _trunk(rot, T, flex=(_lerp(0.35, 0.04, q) + _wobble(rng, T, _lerp(0.08, 0.01, q))) * active,
           lean=-sgn * _lerp(0.2, 0.02, q) * active,
           turn=_wobble(rng, T, _lerp(0.15, 0.02, q)) * active)
    tilt = _lerp(0.5, 0.0, q) * active    # the dowel drops on the swing side
    for arm in "lr":
        rot[f"{arm}_shoulder"] = _angles3(0.15, 1.05 - (tilt if arm == side else 0.0), -1.3, T)
        rot[f"{arm}_elbow"] = _angles3(1.9, T=T)
    kp = pose(s, rot, root, yaw)
    _plant_leg(kp, rot, _other(side), s, ankles[_other(side)], yaw)
    turned_out = fwd + (sgn * _lerp(0.8, 0.0, q) * active)[:, None] * left
    _plant_leg(kp, rot, side, s, swing, yaw, touch_pitch * over + 0.25 * arc, turned_out)
    return pose(s, rot, root, yaw)


def _dowel_behind_back(kp: Keypoints, rot: dict, shape: BodyShape, top: str,
                       fwd: np.ndarray, left: np.ndarray) -> None:
    """Hands on a vertical dowel behind the back: `top` hand behind the neck, the other one at
    the small of the back."""
    scale = shape.height / 1.75
    top_wrist = _local(kp, "spine3", np.array([_sign(top) * 0.03, 0.2, -0.12]) * scale)
    low_wrist = _local(kp, "spine1", np.array([-_sign(top) * 0.03, -0.02, -0.13]) * scale)
    _reach_arm(kp, rot, top, shape, top_wrist, _UP + _sign(top) * 0.5 * left)
    _reach_arm(kp, rot, _other(top), shape, low_wrist, -_sign(top) * left - 0.5 * fwd)


def inline_lunge(take: Take, side: str) -> Keypoints:
    """Feet in line one shin length apart (`side` foot in front), dowel vertical behind the
    back; lower the back knee to the floor behind the front heel and rise. Quality: depth,
    forward torso lean, lateral sway and side lean on the narrow base."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.5, 1.4, 0.4, 1.3, 0.5], take.tempo)
    T, down = len(t), bump(1, 3)
    yaw, spot, fwd, left = _standing_place(take, T)
    back, sgn = _other(side), _sign(side)
    stride = s.shank + s.ankle_height             # back toes to front heel
    lift = 0.2 * s.ankle_height * _UP
    front_toe = spot + (stride / 2 + s.heel + s.foot) * fwd + sgn * 0.015 * left + lift
    back_toe = spot - stride / 2 * fwd - sgn * 0.015 * left + lift
    back_pitch = -np.radians(25 + _lerp(20, 40, q) * down)
    ankles = {side: _ankle_over(front_toe, s, yaw), back: _ankle_over(back_toe, s, yaw,
                                                                       back_pitch)}
    legs = s.thigh + s.shank
    reach = np.linalg.norm((ankles[side] - ankles[back])[0]) / 2
    start = s.ankle_height + s.hip_drop + np.sqrt((0.98 * legs) ** 2 - reach ** 2)
    bottom = s.hip_drop + 0.95 * s.thigh + 0.05 + _lerp(0.25, 0.0, q) * s.height / 1.75
    sway = _lerp(0.05, 0.006, q)
    shift = _wobble(rng, T, sway) * (0.3 + down)
    root = (spot + (-0.03 - 0.05 * down)[:, None] * fwd + shift[:, None] * left
            + (start + (bottom - start) * down)[:, None] * _UP)
    rot = {}
    _trunk(rot, T, flex=np.radians(_lerp(35, 3, q)) * down,
           lean=_wobble(rng, T, _lerp(0.15, 0.015, q)) * (0.3 + down))
    kp = pose(s, rot, root, yaw)
    _dowel_behind_back(kp, rot, s, back, fwd, left)
    _plant_leg(kp, rot, side, s, ankles[side], yaw)
    _plant_leg(kp, rot, back, s, ankles[back], yaw, back_pitch)
    return pose(s, rot, root, yaw)


def shoulder_mobility(take: Take, side: str) -> Keypoints:
    """Standing, fists: the `side` arm reaches over the shoulder and down the back, the other
    one behind and up the back. Quality: the gap left between the fists (grade 3 within one
    hand length, grade 2 within one and a half), trunk flexion, side lean and shrugging."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.6, 1.2, 0.8, 1.2, 0.4], take.tempo)
    T, reach = len(t), bump(1, 3)
    yaw, spot, fwd, left = _standing_place(take, T)
    sgn, scale = _sign(side), s.height / 1.75
    ankles = _feet_together(take, spot, yaw, fwd, left, s.hip_width)
    root = spot + 0.1 * fwd + (s.pelvis_height - 0.006) * _UP + np.zeros((T, 3))
    rot = {}
    _trunk(rot, T, flex=_lerp(0.25, 0.02, q) * reach, lean=-sgn * _lerp(0.15, 0.0, q) * reach,
           head=_lerp(0.2, 0.0, q) * reach)
    rot[f"{side}_collar"] = _angles3(0.0, _lerp(0.3, 0.05, q) * reach, 0.0, T)
    kp = pose(s, rot, root, yaw)
    gap = _lerp(0.2, 0.02, q) + rng.normal(0, 0.01)   # how far each hand stops short
    top = _local(kp, "spine3", np.array([sgn * 0.03, 0.1 + gap, -0.13]) * scale)
    low = _local(kp, "spine3", np.array([-sgn * 0.02, -0.02 - gap, -0.14]) * scale)
    hang = {a: kp[f"{a}_shoulder"] + [0.0, -(s.upper_arm + s.forearm), 0.0] for a in "lr"}
    arc = np.sin(np.pi * np.clip(reach, 0, 1))[:, None]
    top = hang[side] + (top - hang[side]) * reach[:, None] + arc * (0.25 * sgn * left + 0.1 * _UP)
    low = (hang[_other(side)] + (low - hang[_other(side)]) * reach[:, None]
           + arc * (-0.12 * sgn * left - 0.1 * fwd))
    _reach_arm(kp, rot, side, s, top, _UP + sgn * 0.6 * left)
    _reach_arm(kp, rot, _other(side), s, low, -sgn * 0.5 * left - 0.3 * fwd - _UP)
    for leg in "lr":
        _plant_leg(kp, rot, leg, s, ankles[leg], yaw)
    return pose(s, rot, root, yaw)


def straight_leg_raise(take: Take, side: str) -> Keypoints:
    """Supine, arms by the sides palms up: raise the `side` leg straight, toes up, and lower it.
    Quality: the raise angle (grade 3 past mid-thigh, grade 1 below the knee), knee bend of
    the raised leg, the other knee lifting off the floor, the pelvis rolling."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.6, 1.3, 0.5, 1.2, 0.4], take.tempo)
    T, up = len(t), bump(1, 3)
    yaw, spot, fwd, left = _lying_place(take, T, supine=True)
    other = _other(side)
    relaxed = np.pi / 2 - 0.4       # lying feet: toes up, tipped away from the head
    rot = {"pelvis": _angles3(-np.pi / 2 + np.radians(_lerp(8, 2, q)) * up, 0.0,
                              _sign(side) * np.radians(_lerp(8, 1, q)) * up, T),
           "neck": _angles3(0.15, T=T),
           side + "_hip": _angles3(np.radians(_lerp(38, 92, q) + rng.normal(0, 3)) * up, T=T),
           side + "_knee": _angles3(np.radians(_lerp(30, 2, q)) * up, T=T),
           side + "_ankle": _angles3(-0.4 + 0.65 * up, T=T)}
    for arm in "lr":
        rot[f"{arm}_shoulder"] = _angles3(0.0, 0.25, -1.3, T)
    root = spot + 0.12 * _UP + np.zeros((T, 3))
    flat = pose(s, {"pelvis": _angles3(-np.pi / 2)}, root[:1], yaw[:1])
    # The other heel stays on the floor and slides towards the hip (the head is at -fwd) as
    # that knee comes up.
    rest = flat[f"{other}_ankle"][0] * [1, 0, 1] + [0.0, 0.09, 0.0]
    slide = 0.1 * np.clip(1 - q / 0.7, 0, 1) ** 2 * s.height / 1.75
    ankle = rest - (slide * up)[:, None] * fwd
    kp = pose(s, rot, root, yaw)
    _plant_leg(kp, rot, other, s, ankle, yaw, relaxed, _UP)
    kp = pose(s, rot, root, yaw)
    return kp.shifted([0.0, 0.03 - kp[f"{other}_heel"][0, 1], 0.0])


def push_up(take: Take) -> Keypoints:
    """Prone, hands by the head, push the body up and lower it. Quality: hand placement (grade
    3 at the forehead, grade 2 lower, by the chin), the body lifting as a unit versus the chest
    rising first with the hips sagging (lag), and how far the push gets (grade 1 never
    completes)."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.8, 1.2, 0.6, 1.2, 0.5], take.tempo)
    T, up = len(t), bump(1, 3)
    yaw, spot, fwd, left = _lying_place(take, T, supine=False)
    scale = s.height / 1.75

    def body(chest: np.ndarray, hips: np.ndarray) -> tuple[Keypoints, dict]:
        """Legs straight on tucked toes fixed at `spot`; trunk angles above the floor."""
        n = len(chest)
        rot = {"pelvis": _angles3(np.pi / 2 - hips, T=n),
               "spine": _angles3(-0.6 * (chest - hips), T=n),
               "chest": _angles3(-0.4 * (chest - hips), T=n),
               "neck": _angles3(-0.2, T=n),
               "l_ankle": _angles3(0.15, T=n), "r_ankle": _angles3(0.15, T=n)}
        kp = pose(s, rot, np.zeros((n, 3)), np.full(n, yaw[0]))
        toes = (kp["l_foot"] + kp["r_foot"]) / 2
        return kp.shifted(spot - toes + [0.0, 0.2 * s.ankle_height, 0.0]), rot

    flat, _ = body(np.zeros(1), np.zeros(1))
    hand_line = _lerp(0.05, 0.2, np.clip((q - 0.2) / 0.6, 0, 1)) * scale
    wrists = {a: (flat[f"{a}_shoulder"][0] + hand_line * fwd[0] + _sign(a) * 0.1 * left[0])
              * [1, 0, 1] + [0.0, 0.06, 0.0] for a in "lr"}
    # The steepest body angle the straight arms allow.
    grid = np.linspace(0.0, 0.7, 71)
    lifted, _ = body(grid, grid)
    gaps = np.linalg.norm(lifted["l_shoulder"] - wrists["l"], axis=-1)
    top = grid[np.flatnonzero(gaps <= 0.97 * (s.upper_arm + s.forearm)).max()]
    complete = _lerp(0.45, 1.0, np.clip(q / 0.5, 0, 1)) + rng.normal(0, 0.03)
    lag = np.clip(_lerp(0.85, 0.0, np.clip(q / 0.6, 0, 1)) + rng.normal(0, 0.05), 0, 1)
    chest = top * min(complete, 1.0) * up
    kp, rot = body(chest, chest * (1 - lag))
    for a in "lr":
        _reach_arm(kp, rot, a, s, np.broadcast_to(wrists[a], (T, 3)),
                   _sign(a) * left + 0.3 * _UP)      # elbows out to the sides
        rot[f"{a}_wrist"] = _angles3(1.3, T=T)   # palm flat, fingers towards the head
    return pose(s, rot, kp["pelvis"], yaw)


def rotary_stability(take: Take, arm: str, leg: str) -> Keypoints:
    """On hands and knees: reach the `arm` arm forward and the `leg` leg back, then bring elbow
    and knee together under the body, and return (ipsilateral when arm == leg). Quality:
    range of the reach and of the tuck, trunk roll and lateral shift; grade 1 drops the
    limbs back to the floor mid-reach."""
    s, q, rng = take.shape, take.quality, take.rng
    t, bump = _phases([0.6, 1.2, 0.5, 1.2, 0.3, 0.9, 0.4], take.tempo)
    T = len(t)
    reach, tuck = bump(1, 3), bump(3, 5)
    if take.grade == 1 and rng.random() < 0.7:
        reach = reach * (1 - 0.8 * np.exp(-0.5 * ((t - t[np.argmax(reach)]) / 0.2) ** 2))
    active = np.clip(reach + tuck, 0, 1)
    yaw, spot, fwd, left = _lying_place(take, T, supine=False)
    hips_up = s.thigh + s.hip_drop + 0.06
    shoulders_up = 0.985 * (s.upper_arm + s.forearm) + 0.05

    def trunk(pitch: np.ndarray, roll, shift) -> tuple[Keypoints, dict]:
        n = len(pitch)
        rot = {"pelvis": _angles3(np.pi / 2 - pitch, 0.0, roll, n), "neck": _angles3(-0.4, T=n)}
        root = spot + hips_up * _UP + np.asarray(shift).reshape(-1, 1) * left[:n]
        return pose(s, rot, root, np.full(n, yaw[0])), rot

    grid = np.linspace(-0.3, 0.5, 81)
    probe, _ = trunk(grid, 0.0, 0.0)
    pitch = grid[np.argmin(np.abs((probe["l_shoulder"][:, 1] + probe["r_shoulder"][:, 1]) / 2
                                  - shoulders_up))]
    roll = (_sign(arm) * np.radians(_lerp(14, 2, q)) * active
            + _wobble(rng, T, _lerp(0.08, 0.01, q)) * active)
    shift = -_sign(arm) * _lerp(0.06, 0.005, q) * active + _wobble(rng, T, 0.01) * active
    kp, rot = trunk(np.full(T, pitch), roll, shift)
    rest, _ = trunk(np.full(1, pitch), 0.0, 0.0)
    f0 = fwd[0]
    # Reach: the hand forward at shoulder height and the foot back at hip height for grade 3,
    # both aimed lower the poorer the performance.
    rise_arm, rise_leg = np.radians(_lerp(-35, 3, q)), np.radians(_lerp(-30, 3, q))
    reach_wrist = rest[f"{arm}_shoulder"][0] + 0.97 * (s.upper_arm + s.forearm) * (
        np.cos(rise_arm) * f0 + np.sin(rise_arm) * _UP)
    reach_ankle = rest[f"{leg}_hip"][0] + 0.97 * (s.thigh + s.shank) * (
        -np.cos(rise_leg) * f0 + np.sin(rise_leg) * _UP)
    # Tuck: elbow and knee meet under the body (under the limbs' own side when ipsilateral,
    # under the midline when diagonal); the poorer the performance, the less of the way.
    sh, hip = rest[f"{arm}_shoulder"][0], rest[f"{leg}_hip"][0]
    centre = (rest["l_shoulder"][0] + rest["r_shoulder"][0]) / 2
    lateral = (sh - centre) * 0.7 if arm == leg else 0.0 * sh
    along, height = np.meshgrid(np.linspace(0.0, 1.0, 41), np.linspace(0.15, 0.6, 46))
    meet = (sh + lateral + along[..., None] * (hip - sh)) * [1, 0, 1] + height[..., None] * _UP
    elbows = sh + s.upper_arm * _unit(meet - sh)
    knees = hip + s.thigh * _unit(meet - hip)
    best = np.unravel_index(np.linalg.norm(elbows - knees, axis=-1).argmin(), along.shape)
    elbow, knee = elbows[best], knees[best]
    tuck_wrist = elbow + s.forearm * _unit(0.5 * f0 - _UP)
    tuck_ankle = knee + s.shank * _unit(-0.8 * f0 - 0.5 * _UP)
    share = _lerp(0.45, 1.0, q)
    r, k = reach[:, None], tuck[:, None] * share
    for a in "lr":   # hands under the shoulders, knees under the hips, shins on the floor
        wrist = rest[f"{a}_shoulder"][0] * [1, 0, 1] + [0.0, 0.05, 0.0]
        ankle = rest[f"{a}_hip"][0] * [1, 0, 1] - s.shank * f0 + [0.0, s.ankle_height, 0.0]
        if a == arm:
            target = wrist + (reach_wrist - wrist) * r + (tuck_wrist - wrist) * k
            pole = -f0 * (1 - r - k) - _UP * r + (elbow - (sh + tuck_wrist) / 2) * k
        else:
            target, pole = np.broadcast_to(wrist, (T, 3)), -fwd
        _reach_arm(kp, rot, a, s, target, pole)
        rot[f"{a}_wrist"] = _angles3(1.3 * (1 - reach) if a == arm else 1.3, T=T)
        if a == leg:
            target = ankle + (reach_ankle - ankle) * r + (tuck_ankle - ankle) * k
            pole = (f0 - _UP) * (1 - r - k) - _UP * r + (knee - (hip + tuck_ankle) / 2) * k
            pitch = -2.6 + 1.0 * reach
        else:
            target, pole, pitch = np.broadcast_to(ankle, (T, 3)), f0 - _UP, -2.6
        _plant_leg(kp, rot, a, s, target, yaw, pitch, pole)
    return pose(s, rot, kp["pelvis"], yaw)


def perform(take: Take, movement: str) -> Keypoints:
    """The world keypoints of `take` performing `movement` ("m01".."m15")."""
    m = MOVEMENTS[movement]
    words = m.variant.split()
    side = words[0][0]   # "left ..." -> "l", "right ..." -> "r"
    if m.test == "deep squat":
        return deep_squat(take, board=movement == "m02")
    if m.test == "hurdle step":
        return hurdle_step(take, side)
    if m.test == "in-line lunge":
        return inline_lunge(take, side)
    if m.test == "shoulder mobility":
        return shoulder_mobility(take, side)
    if m.test == "active straight leg raise":
        return straight_leg_raise(take, side)
    if m.test == "trunk stability push-up":
        return push_up(take)
    return rotary_stability(take, arm=side, leg=words[3][0])


# ---------------------------------------------------------------------------------------------
# The sensor: what each Azure Kinect reports of a performance.

# Extremities and the face are tracked less precisely than the trunk.
_EXTREMITIES = [KINECT_INDEX[n] for n in ("HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT",
                                          "HAND_RIGHT", "HANDTIP_RIGHT", "THUMB_RIGHT")]
_FACE = [KINECT_INDEX[n] for n in ("NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT")]


@dataclass
class Capture:
    """One camera's recording of one episode, exactly what its JSON file holds (unrounded)."""
    view: str
    joints: np.ndarray           # (T, 32, 3) mm, camera frame
    orientations: np.ndarray     # (T, 32, 4) unit quaternions (w, x, y, z), camera frame
    colour_pixels: np.ndarray    # (T, 32, 2) colour image (u, v)
    confidence: np.ndarray       # (T, 32) int 0..3
    has_body: np.ndarray         # (T,) bool: False for frames whose `bodies` list is empty
    timestamps_usec: np.ndarray  # (T,) int64 device time
    source_frames: np.ndarray    # (T,) int64, `original_frmae_num`


def _matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternion (4,) (w first) of one rotation matrix (3, 3)."""
    w = np.sqrt(max(1.0 + np.trace(m), 1e-12)) / 2
    if w > 0.1:
        return np.array([w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w),
                         (m[1, 0] - m[0, 1]) / (4 * w)])
    i = int(np.argmax(np.diag(m)))       # a half-turn: build from the largest axis component
    j, k = (i + 1) % 3, (i + 2) % 3
    r = np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
    q = np.empty(4)
    q[0], q[1 + i] = (m[k, j] - m[j, k]) / (2 * r), r / 2
    q[1 + j], q[1 + k] = (m[j, i] + m[i, j]) / (2 * r), (m[k, i] + m[i, k]) / (2 * r)
    return q / np.linalg.norm(q)


def _runs(rng: np.random.Generator, shape: tuple, share: float, sigma: float) -> np.ndarray:
    """A boolean mask (T, ...) that is True in runs of a few frames, on about `share` of it."""
    field = gaussian_filter1d(rng.normal(size=shape), sigma, axis=0, mode="nearest")
    field /= max(field.std(), 1e-9)
    return field > np.quantile(field, 1.0 - share) if share > 0 else np.zeros(shape, bool)


def capture(kp: Keypoints, camera: Camera, rng: np.random.Generator) -> Capture:
    """What `camera` reports of the world keypoints `kp`: its own jitter, lower confidence for
    hands, face and joints hidden behind the body, missed frames, device timestamps."""
    world = kp.kinect32()
    T = len(world)
    exact = camera.to_camera(world)
    # Joints farther from the camera than the pelvis by more than 10 cm are partly occluded.
    hidden = exact[..., 2] - exact[:, :1, 2] > 100.0
    sd = np.full(32, JITTER_MM)
    sd[_EXTREMITIES], sd[_FACE] = 2.5 * JITTER_MM, 1.5 * JITTER_MM
    noise = gaussian_filter1d(rng.normal(size=(T, 32, 3)), 1.0, axis=0, mode="nearest")
    noise /= noise.std()
    joints = exact + noise * sd[:, None] * np.where(hidden, 2.0, 1.0)[..., None]

    confidence = np.full((T, 32), 2, dtype=np.int64)
    low = _runs(rng, (T, 32), 0.5, 4.0) & hidden
    low[:, _EXTREMITIES] |= _runs(rng, (T, len(_EXTREMITIES)), 0.3, 4.0)
    confidence[low] = 1
    if rng.random() < 0.2:      # now and then an essential joint is lost for a few frames
        j = rng.choice(ESSENTIAL_JOINTS)
        start = rng.integers(0, max(T - 8, 1))
        confidence[start:start + rng.integers(2, 8), j] = 0
    confidence[:, _EXTREMITIES] = np.where(rng.random((T, len(_EXTREMITIES))) < 0.02, 0,
                                           confidence[:, _EXTREMITIES])

    has_body = np.ones(T, dtype=bool)
    if rng.random() < 0.3:      # the tracker needs a few frames to find the subject
        has_body[:rng.integers(1, 7)] = False
    for _ in range(rng.poisson(0.7)):   # short dropouts
        start = rng.integers(0, T - 4)
        has_body[start:start + rng.integers(1, 5)] = False

    cam_q = _matrix_to_quat(camera.rotation)
    orientations = qmul(np.broadcast_to(cam_q, (T, 32, 4)), kp.kinect32_quats())
    orientations *= np.where(orientations[..., :1] < 0, -1.0, 1.0)   # w >= 0, as the SDK
    source = rng.integers(0, 120) + np.arange(T)
    return Capture(view=camera.name, joints=joints, orientations=orientations,
                   colour_pixels=camera.to_colour_pixels(joints), confidence=confidence,
                   has_body=has_body,
                   timestamps_usec=rng.integers(10**6, 6 * 10**7) + np.round(
                       source * 1e6 / FPS).astype(np.int64),
                   source_frames=source)


def _template(fmt: str, rows: int, cols: int) -> str:
    """A JSON array-of-arrays template with `rows` x `cols` printf fields."""
    row = "[" + ",".join([fmt] * cols) + "]"
    return "[" + ",".join([row] * rows) + "]"


# One body in the published layout; filled with 320 numbers per frame. printf formatting is
# twice as fast as json.dumps here and writes the same JSON.
_BODY = ('{"joint_positions":' + _template("%.1f", 32, 3)
         + ',"joint_orientations":' + _template("%.4f", 32, 4)
         + ',"joint_position_2d_color":' + _template("%.1f", 32, 2)
         + ',"confidence_level":[' + ",".join(["%d"] * 32) + "]}")


def write_capture(path: str | Path, cap: Capture) -> int:
    """Write `cap` as a published skeleton JSON file (compact: 0.1 mm, 0.1 px, 4 decimals for
    quaternions). Returns the number of characters written."""
    T = len(cap.has_body)
    values = np.concatenate([cap.joints.reshape(T, -1), cap.orientations.reshape(T, -1),
                             cap.colour_pixels.reshape(T, -1), cap.confidence], axis=1)
    frames = [
        '{"num_bodies":%d,"timestamp_usec":%d,"bodies":[%s]}'
        % (body, stamp, _BODY % tuple(row) if body else "")
        for body, stamp, row in zip(cap.has_body.tolist(), cap.timestamps_usec.tolist(),
                                    values.tolist())]
    text = ('{"total_frames":%d,"frames":[%s],"original_frmae_num":%s}'
            % (T, ",".join(frames), json.dumps(cap.source_frames.tolist())))
    Path(path).write_text(text)
    return len(text)


# ---------------------------------------------------------------------------------------------
# The corpus: who performs what with which grade, and the files.

@dataclass
class EpisodePlan:
    """One episode of the corpus: its identity, the grade its motion shows, the experts'
    grades, and the performer."""
    subject: str                       # "s01"
    movement: str                      # "m01"
    episode: int                       # 1..max_episodes
    acquired: str                      # YYYYMMDDhhmmss, as in the file name
    grade: int                         # the grade the motion is generated to show
    quality: float                     # 0..1 within that grade's band
    tempo: float
    experts: tuple[int, int, int]      # the three experts' grades
    shape: BodyShape

    def file_name(self, view: str) -> str:
        return f"{view}_{self.subject}_{self.movement}_{self.acquired}_e{self.episode}.json"


def _grade(latent: float) -> int:
    """Grade 1..3 of a standard-normal latent, cut at the quantiles of GRADE_SHARES."""
    return 1 + int(np.searchsorted(norm.ppf(np.cumsum(GRADE_SHARES)[:2]), latent))


def _experts(rng: np.random.Generator, grade: int) -> tuple[int, int, int]:
    """Three expert grades: each slips one step down or up with chance EXPERT_SLIP."""
    slips = rng.choice([-1, 0, 1], size=3, p=[EXPERT_SLIP, 1 - 2 * EXPERT_SLIP, EXPERT_SLIP])
    return tuple(int(g) for g in np.clip(grade + slips, 1, 3))


def plan_corpus(subjects: int, max_episodes: int, seed: int = 0) -> list[EpisodePlan]:
    """Draw the corpus: `subjects` bodies with a fitness level each, 1..`max_episodes`
    episodes of each of the 15 movements, the grade each shows
    (fitness + per-movement and per-episode variation, cut into GRADE_SHARES), its quality
    within the grade, tempo, acquisition time and expert grades."""
    if not 1 <= subjects <= 99 or max_episodes < 1:
        raise ValueError(f"need 1..99 subjects and max_episodes >= 1, got {subjects}, "
                         f"{max_episodes}")
    rng = np.random.default_rng(seed)
    # Fitness levels spread evenly over a standard normal, so that even a dozen subjects
    # give grade shares near GRADE_SHARES.
    fitness_levels = rng.permutation(norm.ppf((np.arange(subjects) + 0.5) / subjects))
    plans = []
    for i in range(subjects):
        shape, fitness, pace = random_shape(rng), fitness_levels[i], rng.uniform(0.85, 1.2)
        clock = datetime(2021, 5, 22, 9, 0) + timedelta(days=i, minutes=int(rng.integers(0, 300)))
        for movement in MOVEMENTS:
            affinity = rng.normal()
            n = int(rng.integers(1, max_episodes + 1))
            for episode in range(1, n + 1):
                latent = 0.75 * fitness + 0.55 * affinity + 0.35 * rng.normal()
                grade = _grade(latent / np.sqrt(0.75**2 + 0.55**2 + 0.35**2))
                clock += timedelta(seconds=int(rng.integers(15, 90)))
                plans.append(EpisodePlan(
                    subject=f"s{i + 1:02d}", movement=movement, episode=episode,
                    acquired=clock.strftime("%Y%m%d%H%M%S"), grade=grade,
                    quality=float(np.clip(0.2 + 0.3 * (grade - 1) + rng.normal(0, 0.08), 0, 1)),
                    tempo=pace * rng.uniform(0.92, 1.08), experts=_experts(rng, grade),
                    shape=shape))
    return plans


def _episode_rng(seed: int, plan: EpisodePlan, stream: int) -> np.random.Generator:
    """An rng for one episode and purpose, independent of the order episodes are made in."""
    key = [seed, int(plan.subject[1:]), int(plan.movement[1:]), plan.episode, stream]
    return np.random.default_rng(key)


def perform_episode(plan: EpisodePlan, seed: int = 0) -> Keypoints:
    """The noise-free world motion (metres, +Y up, floor y = 0) of one planned episode."""
    take = Take(shape=plan.shape, grade=plan.grade, quality=plan.quality, tempo=plan.tempo,
                rng=_episode_rng(seed, plan, 0))
    return perform(take, plan.movement)


def record_episode(plan: EpisodePlan, seed: int = 0) -> dict[str, Capture]:
    """Both cameras' captures {view: Capture} of one planned episode."""
    kp = perform_episode(plan, seed)
    return {view: capture(kp, camera, _episode_rng(seed, plan, k + 1))
            for k, (view, camera) in enumerate(CAMERAS.items())}


README = """PROCEDURAL STAND-IN - NOT THE FMS DATASET

This folder was generated by fmsnb.fms_standin (seed {seed}, {subjects} subjects, up to
{max_episodes} episodes per movement). It imitates the on-disk format of the FMS dataset of
Xing et al. (Scientific Data 9:104, 2022) so that the same reader works on both, but every
motion in it is synthetic: a procedural body performing the 15 FMS movements with
grade-specific quality, seen by two simulated Azure Kinect cameras (depth camera tilted
{tilt} degrees down, front camera {front} m in front, side camera {side} m to the subject's
left, both {height} m high). The expert grades are simulated too. Numbers obtained on it say
that the pipeline works, nothing about real people. The real dataset is available from its
authors on request.
"""


def generate(out_dir: str | Path, subjects: int, max_episodes: int, seed: int = 0,
             progress: bool = True) -> dict:
    """Write the stand-in corpus into `out_dir` in the published layout: `Skeleton data/Front`,
    `Skeleton data/Side` (one JSON file per episode and view), `experts_score.json` and a
    README.txt saying what it is. Skeleton files of an earlier stand-in in `out_dir` are
    replaced; a folder that holds skeleton files but no stand-in README is refused, so that a
    real dataset is never overwritten. Returns a summary (counts, grade shares, bytes, time)."""
    start = time.perf_counter()
    out = Path(out_dir)
    readme = out / "README.txt"
    folders = {view: out / "Skeleton data" / VIEW_FOLDERS[view] for view in CAMERAS}
    old = [p for folder in folders.values() if folder.is_dir() for p in folder.glob("*.json")]
    if old and not (readme.is_file() and readme.read_text().startswith("PROCEDURAL STAND-IN")):
        raise FileExistsError(f"{out}: holds skeleton files and is not a stand-in folder; "
                              "refusing to overwrite it")
    for p in old:
        p.unlink()
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    plans = plan_corpus(subjects, max_episodes, seed)
    scores: dict = {}
    total_bytes, frames, no_body = 0, 0, 0
    for plan in tqdm(plans, desc="FMS stand-in", disable=not progress):
        for view, cap in record_episode(plan, seed).items():
            total_bytes += write_capture(folders[view] / plan.file_name(view), cap)
            frames += len(cap.has_body)
            no_body += int((~cap.has_body).sum())
        scores.setdefault(plan.subject, {}).setdefault(plan.movement, {})[
            f"e{plan.episode}"] = list(plan.experts)
    with open(out / "experts_score.json", "w") as f:
        json.dump(scores, f)
    readme.write_text(README.format(seed=seed, subjects=subjects, max_episodes=max_episodes,
                                    tilt=CAMERA_TILT_DEG, front=FRONT_DISTANCE,
                                    side=SIDE_DISTANCE, height=CAMERA_HEIGHT))
    grades = np.array([p.grade for p in plans])
    experts = np.array([p.experts for p in plans])
    return {"out_dir": str(out), "subjects": subjects, "episodes": len(plans),
            "files": 2 * len(plans), "frames": frames, "no_body_frames": no_body,
            "grades": {g: int((grades == g).sum()) for g in (1, 2, 3)},
            "expert_disagreements": int((experts.min(1) != experts.max(1)).sum()),
            "three_way_disagreements": int((np.sort(experts, 1) == [1, 2, 3]).all(1).sum()),
            "megabytes": round(total_bytes / 1e6, 1),
            "seconds": round(time.perf_counter() - start, 1)}
