"""Physical plausibility of motions (foot skating, penetration, floating, jerk) and posture.

The paper names these artefacts of diffusion-generated motion (and sees "slight floating" in its
Figure 4) but does not measure them. These measures work on joints (T, 22, 3) in the HumanML3D
frame (Y up, metres, floor at y = 0, 20 fps), so real and generated motions are measured alike:
- foot skating: mean horizontal speed (m/s) of a foot joint while it is in contact, contact
  meaning its height is below `CONTACT_HEIGHT`;
- ground penetration: mean depth (m) of the lowest joint below the floor, over all frames;
- floating: mean height (m) of the lowest joint above `CONTACT_HEIGHT`, over all frames (a body
  that should stand on the ground but hovers);
- jerk: mean magnitude (m/s^3) of the third time derivative of all joint positions.

Posture tells a squat from a figure that lies down or stays crouched. A frame is upright when
the pelvis stands at least `UPRIGHT_HEIGHT` of the body's leg length above its lowest foot joint
(the leg length is the pelvis -> hip -> knee -> ankle bone path, which a standing body's pelvis
height matches: its ankle's height makes up for the hip's sideways offset) and the trunk (pelvis
-> neck) leans at most `UPRIGHT_LEAN` degrees from vertical. Heights are taken from the feet, not
from y = 0, so that a floating or sinking figure is judged by its pose. A squat is measured only
when its motion starts and ends upright (`EDGE_FRAMES` frames at each end); its depth is the
lowest pelvis height above the floor. Over a set of motions, `plausibility_stats` gives each
measure's mean and 95% interval and `plausibility_frame` the table of several sets.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fmsnb.humanml3d import FEET_LEFT, FEET_RIGHT, FPS
from fmsnb.metrics import confidence_interval

CONTACT_HEIGHT = 0.05   # metres; a foot joint this close to the floor is taken to be on it
FOOT_JOINTS = list(FEET_LEFT + FEET_RIGHT)
PELVIS, NECK = 0, 12
LEGS = ((0, 1, 4, 7), (0, 2, 5, 8))     # pelvis, hip, knee, ankle: left, right
UPRIGHT_HEIGHT = 0.85   # pelvis above the feet, as a share of the leg length
UPRIGHT_LEAN = 30.0     # degrees; the trunk's largest lean from vertical in an upright frame
EDGE_FRAMES = 5         # a quarter second at 20 fps: a motion's start, and its end


def foot_skating(joints: np.ndarray, fps: int = FPS) -> float:
    """Mean horizontal speed (m/s) of foot joints over the frame pairs where they stay in contact."""
    feet = joints[:, FOOT_JOINTS]
    speed = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps
    contact = (feet[1:, :, 1] < CONTACT_HEIGHT) & (feet[:-1, :, 1] < CONTACT_HEIGHT)
    return float(speed[contact].mean()) if contact.any() else 0.0


def ground_penetration(joints: np.ndarray) -> float:
    """Mean depth (m) of the lowest joint below the floor, per frame, clipped at zero."""
    return float(np.maximum(-joints[..., 1].min(axis=1), 0.0).mean())


def floating(joints: np.ndarray) -> float:
    """Mean height (m) of the lowest joint above the contact band, per frame, clipped at zero."""
    return float(np.maximum(joints[..., 1].min(axis=1) - CONTACT_HEIGHT, 0.0).mean())


def jerk(joints: np.ndarray, fps: int = FPS) -> float:
    """Mean magnitude (m/s^3) of the third finite difference of joint positions."""
    if len(joints) < 4:
        raise ValueError(f"jerk needs at least 4 frames, got {len(joints)}")
    return float(np.linalg.norm(np.diff(joints, n=3, axis=0), axis=-1).mean() * fps ** 3)


MEASURES = {"foot skating (m/s)": foot_skating, "penetration (m)": ground_penetration,
            "floating (m)": floating, "jerk (m/s^3)": jerk}


def plausibility_stats(motions: list[np.ndarray]) -> dict:
    """Each of MEASURES over a set of joints (T_i, 22, 3): (mean, 95% ci) over motions."""
    if not motions:
        raise ValueError("no motions to measure")
    stats = {name: confidence_interval([f(m) for m in motions]) for name, f in MEASURES.items()}
    return {"motions": len(motions), **stats}


def significant(x: float, digits: int = 3) -> str:
    """x to `digits` significant digits: the measures span 1e-4 m to 1e2 m/s^3, and fixed
    decimals would show a small but real penetration as 0.000."""
    return f"{float(x):.{digits}g}"


def plausibility_frame(stats: dict[str, dict], digits: int = 3) -> pd.DataFrame:
    """Rows: motion sets; columns: number of motions and each measure as "mean ± ci", each to
    `digits` significant digits."""
    return pd.DataFrame({name: {"motions": s["motions"],
                                **{m: f"{significant(s[m][0], digits)} ± "
                                      f"{significant(s[m][1], digits)}" for m in MEASURES}}
                         for name, s in stats.items()}).T


def leg_length(joints: np.ndarray) -> float:
    """The body's leg length (m) from joints (T, 22, 3): the pelvis -> hip -> knee -> ankle bone
    path, averaged over both legs, median over the frames (a generated skeleton's bones may
    vary from frame to frame)."""
    bones = [np.linalg.norm(np.diff(joints[:, list(leg)], axis=1), axis=-1).sum(1)
             for leg in LEGS]
    return float(np.median(np.mean(bones, axis=0)))


def upright_frames(joints: np.ndarray) -> np.ndarray:
    """Which frames of joints (T, 22, 3) stand upright, (T,) bool: the pelvis at least
    UPRIGHT_HEIGHT leg lengths above the lowest foot joint, the trunk within UPRIGHT_LEAN
    degrees of vertical."""
    height = joints[:, PELVIS, 1] - joints[:, FOOT_JOINTS, 1].min(axis=1)
    trunk = joints[:, NECK] - joints[:, PELVIS]
    lean = np.degrees(np.arccos(np.clip(trunk[:, 1] / np.linalg.norm(trunk, axis=-1), -1, 1)))
    return (height >= UPRIGHT_HEIGHT * leg_length(joints)) & (lean <= UPRIGHT_LEAN)


def squat_posture(joints: np.ndarray) -> dict:
    """Whether a motion, joints (T, 22, 3), starts upright and ends upright (all of its first,
    and all of its last, EDGE_FRAMES frames are `upright_frames`) and its lowest pelvis height
    above the floor (m)."""
    if len(joints) < EDGE_FRAMES:
        raise ValueError(f"a posture needs at least {EDGE_FRAMES} frames, got {len(joints)}")
    upright = upright_frames(joints)
    return {"starts_upright": bool(upright[:EDGE_FRAMES].all()),
            "ends_upright": bool(upright[-EDGE_FRAMES:].all()),
            "lowest_pelvis_m": float(joints[:, PELVIS, 1].min())}


def squat_depth(motions: list[np.ndarray]) -> dict:
    """The squat measure of a set of motions, each joints (T_i, 22, 3): `n` motions, `upright`
    of them start and end upright (`upright_share`, NaN for no motion), and the mean and spread
    of the lowest pelvis height over those upright ones only (`lowest_pelvis_m`,
    `lowest_pelvis_sd_m`; NaN when none is upright)."""
    postures = [squat_posture(j) for j in motions]
    lowest = np.array([p["lowest_pelvis_m"] for p in postures
                       if p["starts_upright"] and p["ends_upright"]])
    return {"n": len(postures), "upright": len(lowest),
            "upright_share": len(lowest) / len(postures) if postures else float("nan"),
            "lowest_pelvis_m": float(lowest.mean()) if len(lowest) else float("nan"),
            "lowest_pelvis_sd_m": float(lowest.std()) if len(lowest) else float("nan")}
