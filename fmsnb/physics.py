"""Physical plausibility of motions: foot skating, ground penetration, floating and jerk.

The paper names these artefacts of diffusion-generated motion (and sees "slight floating" in its
Figure 4) but does not measure them. These measures work on joints (T, 22, 3) in the HumanML3D
frame (Y up, metres, floor at y = 0, 20 fps), so real and generated motions are measured alike:
- foot skating: mean horizontal speed (m/s) of a foot joint while it is in contact, contact
  meaning its height is below `CONTACT_HEIGHT`;
- ground penetration: mean depth (m) of the lowest joint below the floor, over all frames;
- floating: mean height (m) of the lowest joint above `CONTACT_HEIGHT`, over all frames (a body
  that should stand on the ground but hovers);
- jerk: mean magnitude (m/s^3) of the third time derivative of all joint positions.
"""
from __future__ import annotations

import numpy as np

from fmsnb.humanml3d import FEET_LEFT, FEET_RIGHT, FPS

CONTACT_HEIGHT = 0.05   # metres; a foot joint this close to the floor is taken to be on it
FOOT_JOINTS = list(FEET_LEFT + FEET_RIGHT)


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


def plausibility(motions: list[np.ndarray]) -> dict[str, float]:
    """Each measure averaged over a set of motions, each joints (T_i, 22, 3)."""
    return {name: float(np.mean([f(m) for m in motions])) for name, f in MEASURES.items()}
