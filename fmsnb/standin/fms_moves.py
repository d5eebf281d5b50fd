"""The FMS stand-in's choreography: a `fmsnb.standin.body` figure performing the 15 FMS movements.

Each of the seven tests (deep squat, hurdle step, in-line lunge, shoulder mobility, active
straight leg raise, trunk stability push-up, rotary stability) is authored as time envelopes of
the movement's phases, a pelvis path, trunk angles and hand and foot targets that the body's
inverse kinematics (`solve_legs`, `solve_arms`) turns into joint angles. One `Take.quality`
(0 poor .. 1 perfect, continuous within the grade's band) drives every amplitude and
compensation, so a grade-3 deep squat reaches full depth with an upright torso and flat heels
while a grade-1 one stays shallow, leans and drifts to one side, and so on for every test.
`perform` returns noise-free world keypoints (metres, +Y up, floor at y = 0);
`fmsnb.standin.fms_recorder` records them with simulated cameras and writes the corpus.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from fmsnb.fms import FPS, MOVEMENTS
from fmsnb.quaternion import qrot
from fmsnb.standin.body import (KEYPOINTS, BodyShape, Keypoints, pose, solve_arms, solve_legs,
                                toe_ankle)

BOARD_HEIGHT = 0.05  # the 2-inch board under the heels in m02

# ---------------------------------------------------------------------------------------------
# Authoring tools: time envelopes, slow noise, directions, trunk angles.

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
    return {side: toe_ankle(s, spot + _sign(side) * width * left + 0.1 * fwd
                            + [0.0, 0.2 * s.ankle_height, 0.0], yaw)
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
    ankles = {side: toe_ankle(s, spot + _sign(side) * width * left + 0.12 * fwd
                              + [0.0, 0.2 * s.ankle_height, 0.0], yaw, -heel_up)
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
    cave = np.tan(np.radians(_lerp(25, 0, q))) * down
    knees = {side: fwd - _sign(side) * cave[:, None] * left for side in "lr"}
    rot = solve_legs(s, rot, root, yaw, ankles, foot_pitch={"l": -heel_up, "r": -heel_up},
                     knee_poles=knees)
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
    turned_out = fwd + (sgn * _lerp(0.8, 0.0, q) * active)[:, None] * left
    rot = solve_legs(s, rot, root, yaw, {_other(side): ankles[_other(side)], side: swing},
                     foot_pitch={side: touch_pitch * over + 0.25 * arc},
                     knee_poles={_other(side): fwd, side: turned_out})
    return pose(s, rot, root, yaw)


def _dowel_behind_back(kp: Keypoints, shape: BodyShape, top: str, fwd: np.ndarray,
                       left: np.ndarray) -> tuple[dict, dict]:
    """Wrist targets and elbow poles {side: (T, 3)} of hands on a vertical dowel behind the
    back: the `top` hand behind the neck, the other one at the small of the back."""
    scale = shape.height / 1.75
    wrists = {top: _local(kp, "spine3", np.array([_sign(top) * 0.03, 0.2, -0.12]) * scale),
              _other(top): _local(kp, "spine1",
                                  np.array([-_sign(top) * 0.03, -0.02, -0.13]) * scale)}
    elbows = {top: _UP + _sign(top) * 0.5 * left, _other(top): -_sign(top) * left - 0.5 * fwd}
    return wrists, elbows


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
    ankles = {side: toe_ankle(s, front_toe, yaw), back: toe_ankle(s, back_toe, yaw, back_pitch)}
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
    rot = solve_arms(s, rot, root, yaw, *_dowel_behind_back(kp, s, back, fwd, left))
    rot = solve_legs(s, rot, root, yaw, ankles, foot_pitch={back: back_pitch},
                     knee_poles={side: fwd, back: fwd})
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
    elbows = {side: _UP + sgn * 0.6 * left, _other(side): -sgn * 0.5 * left - 0.3 * fwd - _UP}
    rot = solve_arms(s, rot, root, yaw, {side: top, _other(side): low}, elbows)
    rot = solve_legs(s, rot, root, yaw, ankles, knee_poles={"l": fwd, "r": fwd})
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
    rot = solve_legs(s, rot, root, yaw, {other: ankle}, foot_pitch={other: relaxed},
                     knee_poles={other: _UP})
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
        rot[f"{a}_wrist"] = _angles3(1.3, T=T)   # palm flat, fingers towards the head
    rot = solve_arms(s, rot, kp["pelvis"], yaw, wrists,
                     {a: _sign(a) * left + 0.3 * _UP for a in "lr"})   # elbows out to the sides
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
    # Hands under the shoulders, knees under the hips, shins on the floor, toes tucked; the
    # moving arm and leg leave from there.
    wrists = {a: rest[f"{a}_shoulder"][0] * [1, 0, 1] + [0.0, 0.05, 0.0] for a in "lr"}
    ankles = {a: rest[f"{a}_hip"][0] * [1, 0, 1] - s.shank * f0 + [0.0, s.ankle_height, 0.0]
              for a in "lr"}
    elbow_poles, knee_poles = {a: -fwd for a in "lr"}, {a: f0 - _UP for a in "lr"}
    wrist, ankle = wrists[arm], ankles[leg]
    wrists[arm] = wrist + (reach_wrist - wrist) * r + (tuck_wrist - wrist) * k
    elbow_poles[arm] = -f0 * (1 - r - k) - _UP * r + (elbow - (sh + tuck_wrist) / 2) * k
    ankles[leg] = ankle + (reach_ankle - ankle) * r + (tuck_ankle - ankle) * k
    knee_poles[leg] = (f0 - _UP) * (1 - r - k) - _UP * r + (knee - (hip + tuck_ankle) / 2) * k
    toes = {a: -2.6 + 1.0 * reach if a == leg else -2.6 for a in "lr"}
    for a in "lr":
        rot[f"{a}_wrist"] = _angles3(1.3 * (1 - reach) if a == arm else 1.3, T=T)
    rot = solve_arms(s, rot, kp["pelvis"], yaw, wrists, elbow_poles)
    rot = solve_legs(s, rot, kp["pelvis"], yaw, ankles, foot_pitch=toes, knee_poles=knee_poles)
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
