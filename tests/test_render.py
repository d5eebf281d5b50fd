"""Tests for fmsnb.render: figures build for both skeletons, videos are written."""
import io
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from fmsnb import render
from fmsnb.fms import KINECT_PARENTS
from fmsnb.humanml3d import KINEMATIC_CHAINS, process_joints


def _motion(n_frames: int, n_joints: int, seed: int = 0) -> np.ndarray:
    """A small random-walk motion (T, J, 3) standing above the floor."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform([-0.3, 0.1, -0.2], [0.3, 1.7, 0.2], size=(n_joints, 3))
    return rest + np.cumsum(rng.normal(0, 0.01, size=(n_frames, n_joints, 3)), axis=0)


def _render(fig: Figure) -> None:
    """Rasterise the figure for real (Agg), as a headless notebook or test run would."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.tell() > 0


def _bone_count(chains) -> int:
    return sum(len(c) - 1 for c in chains)


def test_chains_from_parents_gives_one_bone_per_non_root_joint():
    chains = render.chains_from_parents(KINECT_PARENTS)
    assert len(chains) == 31
    assert all(KINECT_PARENTS[child] == parent for parent, child in chains)


@pytest.mark.parametrize("n_joints", [22, 32])
def test_draw_skeleton_draws_every_bone_at_the_pose(n_joints):
    joints = _motion(1, n_joints)[0]
    chains = None if n_joints == 22 else render.chains_from_parents(KINECT_PARENTS)
    ax = Figure().add_subplot(projection="3d")
    lines = render.draw_skeleton(ax, joints, chains)
    segments = np.asarray(lines._segments3d)
    assert segments.shape == (_bone_count(chains or KINEMATIC_CHAINS), 2, 3)
    # Every segment end is one of the pose's joints.
    assert np.isclose(segments.reshape(-1, 1, 3), joints[None]).all(-1).any(-1).all()
    assert ax.get_ylim()[0] <= 0.0          # the ground plane at y = 0 is in view


def test_draw_skeleton_needs_chains_for_a_non_humanml3d_skeleton():
    ax = Figure().add_subplot(projection="3d")
    with pytest.raises(ValueError, match="32-joint"):
        render.draw_skeleton(ax, _motion(1, 32)[0])
    with pytest.raises(ValueError, match="shape"):
        render.draw_skeleton(ax, np.zeros((22, 2)))


@pytest.mark.parametrize("n_joints", [22, 32])
def test_stick_figures_overlay_poses_in_each_view(n_joints):
    joints = _motion(30, n_joints)
    chains = None if n_joints == 22 else render.chains_from_parents(KINECT_PARENTS)
    fig = render.plot_stick_figures(joints, view=render.PAPER_VIEWS, n_poses=5, chains=chains)
    axes3d = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(axes3d) == 3
    bones = _bone_count(chains or KINEMATIC_CHAINS)
    for ax, name in zip(axes3d, render.PAPER_VIEWS):
        skeletons = [c for c in ax.collections if isinstance(c, Line3DCollection)
                     and len(c._segments3d) == 5 * bones]
        assert len(skeletons) == 1
        assert ax.elev == render.VIEWS[name][0] and ax.azim == render.VIEWS[name][1]
        # Five distinct colours: poses are told apart by time.
        assert len(np.unique(skeletons[0].get_colors(), axis=0)) == 5
    _render(fig)


def test_stick_figures_reject_an_unknown_view():
    with pytest.raises(ValueError, match="unknown view"):
        render.plot_stick_figures(_motion(10, 22), view="behind")


def test_feature_layout_labels_every_group():
    features = process_joints(_motion(25, 22))
    fig = render.plot_feature_layout(features)
    ax = fig.axes[0]
    labels = "\n".join(t.get_text() for t in ax.get_yticklabels())
    for name in ("root angular velocity", "root linear velocity", "root height", "ric positions",
                 "6D rotations", "joint velocities", "foot contacts"):
        assert name in labels
    assert "standardised per dimension" in fig.axes[1].get_ylabel()
    image = ax.get_images()[0]
    rows = np.asarray(image.get_array())
    assert rows.shape == (263, len(features))
    # Each dimension is a z-score over time (constant ones, e.g. frame-0 quirks, show as 0).
    assert np.allclose(rows.mean(1), 0, atol=1e-6)
    assert np.all(np.isclose(rows.std(1), 1) | np.isclose(rows.std(1), 0))
    assert image.get_clim() == (-3.0, 3.0)
    _render(fig)
    with pytest.raises(ValueError, match="263"):
        render.plot_feature_layout(features[:, :100])


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_animate_writes_a_non_empty_video(tmp_path: Path, suffix):
    path = render.animate(_motion(10, 22), tmp_path / f"clip{suffix}", size_px=96,
                          progress=False)
    assert path == tmp_path / f"clip{suffix}"
    assert path.stat().st_size > 0
    frames = imageio.mimread(path)
    assert len(frames) == 10 and frames[0].shape == (96, 96, 3)
    assert np.ptp(np.asarray(frames[0])) > 0                   # not a blank frame


def test_animate_draws_a_kinect_skeleton(tmp_path: Path):
    path = render.animate(_motion(10, 32), tmp_path / "kinect.mp4", size_px=96, progress=False,
                          chains=render.chains_from_parents(KINECT_PARENTS))
    assert path.stat().st_size > 0
