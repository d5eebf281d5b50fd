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


def test_plausibility_table_has_every_measure():
    table = physics.plausibility([standing(), standing(height=0.2)])
    assert set(table) == set(physics.MEASURES)
    with pytest.raises(ValueError, match="4 frames"):
        physics.jerk(standing(3))
