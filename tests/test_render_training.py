"""Tests for the training chapters' figures in fmsnb.render: loss curves and stick-figure grids."""
import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from fmsnb import render
from fmsnb.humanml3d import KINEMATIC_CHAINS

BONES = sum(len(c) - 1 for c in KINEMATIC_CHAINS)


def _motion(n_frames: int, seed: int = 0, shift=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A small random-walk motion (T, 22, 3) standing above the floor, moved by `shift`."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform([-0.3, 0.1, -0.2], [0.3, 1.7, 0.2], size=(22, 3))
    return rest + np.cumsum(rng.normal(0, 0.01, size=(n_frames, 22, 3)), axis=0) + shift


def _render(fig: Figure) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.tell() > 0


def _panels(fig: Figure) -> list:
    """The 3D axes of a grid figure, in drawing order."""
    return [ax for ax in fig.get_axes() if ax.name == "3d"]


def test_loss_curves_draw_one_line_per_run_on_a_log_scale():
    steps = np.arange(10, 110, 10)
    curves = {"base": (steps, np.linspace(1.0, 0.1, 10)), "token": (steps, np.linspace(2, 0.2, 10))}
    fig = render.plot_loss_curves(curves, title="losses")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["base", "token"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), curves["token"][1])
    # Identical curves stay distinguishable: each run has its own dash pattern.
    assert len({line.get_linestyle() for line in ax.get_lines()}) == 2
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "optimiser step"
    _render(fig)


def test_loss_curves_use_a_linear_axis_for_a_narrow_range_unless_asked():
    curves = {"short run": (np.arange(1, 5), np.array([1.7, 1.6, 2.0, 1.75]))}
    assert render.plot_loss_curves(curves).axes[0].get_yscale() == "linear"
    assert render.plot_loss_curves(curves, log=True).axes[0].get_yscale() == "log"


def test_loss_curves_reject_mismatched_or_missing_curves():
    with pytest.raises(ValueError, match="no loss curves"):
        render.plot_loss_curves({})
    with pytest.raises(ValueError, match="'a'"):
        render.plot_loss_curves({"a": (np.arange(3), np.ones(4))})


def test_stick_grid_has_one_panel_per_motion_with_every_pose():
    groups = {"base": {f"grade {g}": _motion(30 + g, seed=g) for g in (1, 2, 3)},
              "token": {f"grade {g}": _motion(25, seed=10 + g) for g in (1, 2, 3)}}
    fig = render.plot_stick_grid(groups, n_poses=4)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["grade 1", "grade 2", "grade 3"] * 2
    for ax in panels:
        skeletons = [c for c in ax.collections if isinstance(c, Line3DCollection)
                     and len(c._segments3d) == 4 * BONES]
        assert len(skeletons) == 1
        # Poses are told apart by time: four distinct colours.
        assert len(np.unique(skeletons[0].get_colors(), axis=0)) == 4
    _render(fig)


def test_stick_grid_share_all_gives_every_panel_one_height_range():
    # A second motion 1 m higher: with one shared height range both panels show both heights.
    groups = {"low": {"a": _motion(20)}, "high": {"b": _motion(20, 1, shift=(2.0, 1.0, 0.0))}}
    shared = [ax.get_ylim() for ax in _panels(render.plot_stick_grid(groups))]
    assert shared[0] == pytest.approx(shared[1])
    own = [ax.get_ylim() for ax in _panels(render.plot_stick_grid(groups, share="group"))]
    assert own[0] != pytest.approx(own[1])
    # Each panel stays centred on its own motion horizontally, whatever the sharing.
    panels = _panels(render.plot_stick_grid(groups))
    assert np.mean(panels[1].get_xlim()) - np.mean(panels[0].get_xlim()) == pytest.approx(2.0,
                                                                                          abs=0.3)


def test_stick_grid_rejects_empty_groups_bad_sharing_and_other_skeletons():
    with pytest.raises(ValueError, match="at least one"):
        render.plot_stick_grid({"empty": {}})
    with pytest.raises(ValueError, match="share"):
        render.plot_stick_grid({"g": {"a": _motion(10)}}, share="row")
    with pytest.raises(ValueError, match="22-joint|32-joint"):
        render.plot_stick_grid({"g": {"a": np.zeros((10, 32, 3))}})
