import numpy as np
import pytest

from fmsnb import physics


def standing(T=40, height=0.0):
    """A rigid body whose lowest joints (the feet) sit at `height`."""
    joints = np.zeros((T, 22, 3))
    joints[..., 1] = np.linspace(0.1, 1.7, 22)[None] + height
    joints[:, physics.FOOT_JOINTS, 1] = height
    return joints


def test_a_still_body_on_the_floor_is_plausible():
    j = standing()
    assert physics.foot_skating(j) == 0.0
    assert physics.ground_penetration(j) == 0.0
    assert physics.floating(j) == 0.0
    assert physics.jerk(j) == 0.0


def test_sliding_feet_skate_at_their_speed():
    j = standing()
    j[..., 0] += np.arange(len(j))[:, None] * 0.01      # 1 cm per frame = 0.2 m/s at 20 fps
    assert physics.foot_skating(j) == pytest.approx(0.2)


def test_lifted_feet_do_not_count_as_skating():
    j = standing(height=0.3)
    j[..., 0] += np.arange(len(j))[:, None] * 0.01
    assert physics.foot_skating(j) == 0.0


def test_penetration_and_floating_measure_the_offset():
    assert physics.ground_penetration(standing(height=-0.1)) == pytest.approx(0.1)
    assert physics.floating(standing(height=0.25)) == pytest.approx(0.25 - physics.CONTACT_HEIGHT)


def test_jerk_of_a_cubic_path():
    t = np.arange(20) / 20.0
    j = standing(20)
    j[..., 2] += (t ** 3)[:, None]                         # third derivative 6 m/s^3
    assert physics.jerk(j) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="4 frames"):
        physics.jerk(standing(3))


# ------------------------------------------------------------------ posture and squat depth

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


def test_a_standing_figure_is_upright_throughout():
    j = figure(np.full(40, STAND))
    assert physics.leg_length(j) == pytest.approx(np.hypot(0.09, 0.05) + THIGH + SHIN)
    assert physics.upright_frames(j).all()
    floating = j + [0.0, 0.3, 0.0]                   # judged by its pose, not by its height
    assert physics.upright_frames(floating).all()
    posture = physics.squat_posture(j)
    assert posture["starts_upright"] and posture["ends_upright"]
    assert posture["lowest_pelvis_m"] == pytest.approx(STAND)


def test_a_squat_that_returns_to_standing_is_upright_at_both_ends():
    posture = physics.squat_posture(squat(bottom=0.55))
    assert posture["starts_upright"] and posture["ends_upright"]
    assert posture["lowest_pelvis_m"] == pytest.approx(0.55, abs=0.01)
    assert not physics.upright_frames(squat())[30]                  # not at the bottom


def test_lying_flat_crouching_at_the_end_or_bending_over_is_not_upright():
    flat = physics.squat_posture(lying())
    assert not flat["starts_upright"] and not flat["ends_upright"]
    crouched = physics.squat_posture(squat(then_stand=False))
    assert crouched["starts_upright"] and not crouched["ends_upright"]
    bent = figure(np.full(40, STAND), lean_deg=physics.UPRIGHT_LEAN + 10)
    assert not physics.upright_frames(bent).any()
    with pytest.raises(ValueError, match="frames"):
        physics.squat_posture(figure(np.full(physics.EDGE_FRAMES - 1, STAND)))


def test_squat_depth_counts_only_the_upright_motions():
    motions = [figure(np.full(40, STAND)), squat(bottom=0.55), lying(), squat(then_stand=False)]
    depth = physics.squat_depth(motions)
    assert depth["n"] == 4 and depth["upright"] == 2 and depth["upright_share"] == 0.5
    lowest = [STAND, physics.squat_posture(motions[1])["lowest_pelvis_m"]]
    assert depth["lowest_pelvis_m"] == pytest.approx(np.mean(lowest))
    assert depth["lowest_pelvis_sd_m"] == pytest.approx(np.std(lowest))
    none = physics.squat_depth([lying()])
    assert none["upright"] == 0 and none["upright_share"] == 0
    assert np.isnan(none["lowest_pelvis_m"]) and np.isnan(none["lowest_pelvis_sd_m"])
    assert physics.squat_depth([])["n"] == 0 and np.isnan(physics.squat_depth([])["upright_share"])


def test_plausibility_stats_and_frame():
    stats = {"still": physics.plausibility_stats([standing(), standing()]),
             "floating": physics.plausibility_stats([standing(height=0.3), standing(height=0.5)])}
    assert stats["still"]["motions"] == 2
    assert stats["still"]["floating (m)"] == (0.0, 0.0)
    mean, ci = stats["floating"]["floating (m)"]
    assert mean == pytest.approx(0.4 - physics.CONTACT_HEIGHT) and ci > 0
    frame = physics.plausibility_frame(stats)
    assert list(frame.index) == ["still", "floating"]
    assert list(frame.columns) == ["motions", *physics.MEASURES]
    assert frame.loc["floating", "floating (m)"] == f"{mean:.3g} ± {ci:.3g}"
    assert physics.significant(0.000123456) == "0.000123" and physics.significant(110.488) == "110"
    with pytest.raises(ValueError, match="no motions"):
        physics.plausibility_stats([])
