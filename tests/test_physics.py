import numpy as np
import pytest

from fmsnb import physics
from postures import SHIN, STAND, THIGH, figure, lying, squat


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
