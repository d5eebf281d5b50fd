"""Tests for fmsnb.render.animate_grid: a grid of motions written as one video."""
import imageio.v2 as imageio
import numpy as np
import pytest

from fmsnb import render


def _motion(n_frames: int, seed: int = 0, speed: float = 0.01) -> np.ndarray:
    """A small random-walk 22-joint motion (T, 22, 3) standing above the floor."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform([-0.3, 0.1, -0.2], [0.3, 1.7, 0.2], size=(22, 3))
    return rest + np.cumsum(rng.normal(0, speed, size=(n_frames, 22, 3)), axis=0)


def test_grid_video_has_one_frame_per_step_and_codec_sized_frames(tmp_path):
    grid = [[_motion(40, 0), _motion(24, 1)], ["no clip of this grade", None]]
    path = render.animate_grid(grid, ["model", "real"], ["grade 1", "grade 2"],
                               tmp_path / "grid.mp4", fps=20, max_fps=10, panel_px=96,
                               title="a grid", cell_labels=[["a", "b"], ["", ""]], progress=False)
    assert path.is_file() and path.stat().st_size > 0
    frames = imageio.mimread(path)
    # 40 frames at 20 fps subsampled to 10 fps: every second frame of the longest motion.
    assert len(frames) == 20
    height, width = frames[0].shape[:2]
    assert height % 16 == 0 and width % 16 == 0
    assert width >= 2 * 96 and height >= 2 * 96


def test_shorter_motion_holds_its_last_pose_while_the_longer_one_moves(tmp_path):
    still_after = 10
    grid = [[_motion(still_after, 0, speed=0.05), _motion(60, 1, speed=0.05)]]
    path = render.animate_grid(grid, ["row"], ["short", "long"], tmp_path / "grid.gif",
                               fps=20, max_fps=20, panel_px=96, progress=False)
    assert path.suffix == ".gif"
    frames = np.asarray(imageio.mimread(path))[..., :3].astype(float)
    split = 26 + 96                         # the 26-pixel row-label band, then one panel
    late = frames[still_after + 1:]
    short_change = np.abs(np.diff(late[:, 30:, :split], axis=0)).max(axis=(1, 2, 3))
    long_change = np.abs(np.diff(late[:, 30:, split:], axis=0)).max(axis=(1, 2, 3))
    assert (short_change < 60).all()        # only palette noise where the pose is held
    assert (long_change > 100).all()        # the longer motion keeps moving
    # The held pose is still drawn: the last frame's short panel shows the coloured limbs.
    colourful = late[-1, 30:, :split].max(-1) - late[-1, 30:, :split].min(-1) > 100
    assert colourful.sum() > 50


def test_grid_checks_its_shape_and_content(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        render.animate_grid([[_motion(5)]], ["a", "b"], ["c"], tmp_path / "x.mp4", progress=False)
    with pytest.raises(ValueError, match="no motion"):
        render.animate_grid([["empty"]], ["a"], ["c"], tmp_path / "x.mp4", progress=False)
    with pytest.raises(ValueError, match="cell_labels"):
        render.animate_grid([[_motion(5)]], ["a"], ["c"], tmp_path / "x.mp4",
                            cell_labels=[["a", "b"]], progress=False)
    with pytest.raises(ValueError, match="NaN"):
        render.animate_grid([[np.full((5, 22, 3), np.nan)]], ["a"], ["c"], tmp_path / "x.mp4",
                            progress=False)
