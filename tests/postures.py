"""Stick figures in known postures (standing, squatting, lying) for the posture tests of
`physics` and the squat pictures of `render`: joints (T, 22, 3) in the HumanML3D order."""
import numpy as np

THIGH = SHIN = 0.42


def figure(pelvis_height, lean_deg=0.0):
    """A stick figure in the HumanML3D joint order, joints (T, 22, 3), ankles planted at 8 cm
    with the toes forward (+Z); the pelvis at `pelvis_height` (T,) metres, the knees bent
    forward as far as that takes, the trunk leaning forward by `lean_deg` (T,) degrees."""
    pelvis_height = np.asarray(pelvis_height, float)
    T = len(pelvis_height)
    lean = np.radians(np.broadcast_to(lean_deg, (T,)))
    j = np.zeros((T, 22, 3))
    j[:, 0, 1] = pelvis_height
    for side, (hip, knee, ankle, foot) in ((1, (1, 4, 7, 10)), (-1, (2, 5, 8, 11))):
        j[:, hip] = j[:, 0] + [0.09 * side, -0.05, 0.0]
        j[:, ankle] = [0.09 * side, 0.08, 0.0]
        j[:, foot] = [0.09 * side, 0.02, 0.14]
        reach = np.minimum(j[:, hip, 1] - j[:, ankle, 1], THIGH + SHIN)
        j[:, knee] = (j[:, hip] + j[:, ankle]) / 2
        j[:, knee, 2] = np.sqrt(THIGH ** 2 - (reach / 2) ** 2)
    up = np.stack([np.zeros(T), np.cos(lean), np.sin(lean)], axis=-1)        # (T, 3)
    for joint, along in ((3, 0.1), (6, 0.2), (9, 0.3), (12, 0.5), (15, 0.65)):
        j[:, joint] = j[:, 0] + along * up
    for side, chain in ((1, (13, 16, 18, 20)), (-1, (14, 17, 19, 21))):
        j[:, chain[0]] = j[:, 9] + [0.08 * side, 0.1, 0.0]
        for k, joint in enumerate(chain[1:], 1):
            j[:, joint] = j[:, 9] + [0.18 * side, 0.1 - 0.27 * (k - 1), 0.0]
    return j


STAND = 0.97                    # the figure's standing pelvis height


def squat(T=60, bottom=0.55, then_stand=True):
    """Down from standing to `bottom` and (unless then_stand is False) back up."""
    phase = np.clip((np.arange(T) - 10) / (T - 20), 0, 1)
    dip = np.sin(np.pi * phase) if then_stand else np.sin(np.pi / 2 * phase)
    return figure(STAND - (STAND - bottom) * dip, lean_deg=20 * dip)


def lying(T=60):
    """The standing figure turned onto its back on the floor: head along +Z, face up."""
    j = figure(np.full(T, STAND))[..., [0, 2, 1]] * [1, -1, 1]     # y up -> z; z -> -y
    j[..., 1] -= j[..., 1].min()
    return j
