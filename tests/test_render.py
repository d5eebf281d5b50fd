"""Tests for fmsnb.render: skeletons and stick figures of both skeletons, the feature layout,
the data chapter's grade counts and joint mapping, loss curves, stick-figure grids, squat
depth over time, metric intervals, confusion matrices, and videos of one motion or a grid of them."""
import io
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from fmsnb import render
from fmsnb.fms import KINECT_PARENTS
from fmsnb.humanml3d import KINEMATIC_CHAINS, process_joints
from postures import lying, squat


def _motion(n_frames: int, n_joints: int = 22, seed: int = 0, speed: float = 0.01,
            shift=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A small random-walk motion (T, J, 3) standing above the floor, moved by `shift`."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform([-0.3, 0.1, -0.2], [0.3, 1.7, 0.2], size=(n_joints, 3))
    steps = rng.normal(0, speed, size=(n_frames, n_joints, 3))
    return rest + np.cumsum(steps, axis=0) + shift


def _render(fig: Figure) -> None:
    """Rasterise the figure for real (Agg), as a headless notebook or test run would."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.tell() > 0


def _bone_count(chains) -> int:
    return sum(len(c) - 1 for c in chains)


def _panels(fig: Figure) -> list:
    """The 3D axes of a grid figure, in drawing order."""
    return [ax for ax in fig.get_axes() if ax.name == "3d"]


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


# ------------------------------------------------------------ data: grade counts, joint mapping

def test_grade_counts_stack_each_movement_by_grade():
    counts = {"m01": {1: 2, 2: 5, 3: 1}, "m02": {1: 0, 2: 3, 3: 4}, "m03": {1: 1, 2: 0, 3: 0}}
    fig = render.plot_grade_counts(counts, title="episodes")
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 3 * 3                              # one bar per movement and grade
    by_grade = [bars[3 * k:3 * k + 3] for k in range(3)]    # drawn grade by grade
    for k, grade in enumerate((1, 2, 3)):
        assert [b.get_height() for b in by_grade[k]] == [counts[m][grade] for m in counts]
    # Grade 3 sits on grades 1 + 2: the stack's top is each movement's total.
    tops = [b.get_y() + b.get_height() for b in by_grade[2]]
    assert tops == [sum(c.values()) for c in counts.values()]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["grade 1 (3)", "grade 2 (8)", "grade 3 (5)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(counts)
    _render(fig)


def test_grade_counts_reject_bad_input():
    with pytest.raises(ValueError, match="no movements"):
        render.plot_grade_counts({})
    with pytest.raises(ValueError, match="grades must be"):
        render.plot_grade_counts({"m01": {0: 1}})
    with pytest.raises(ValueError, match="negative"):
        render.plot_grade_counts({"m01": {1: -1}})


def test_skeleton_mapping_marks_dropped_and_placed_joints():
    rng = np.random.default_rng(0)
    kinect = rng.uniform(-0.5, 1.5, size=(32, 3))
    hml = rng.uniform(-0.5, 1.5, size=(22, 3))
    fig = render.plot_skeleton_mapping(kinect, render.chains_from_parents(KINECT_PARENTS),
                                       [8, 9, 10], hml, [6, 9], titles=("Kinect", "HumanML3D"))
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("Kinect", "HumanML3D")
    # Each panel: the unmarked joints in black, then the marked ones in their colour.
    sizes = [[len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_sizes")
              and len(c.get_sizes())] for ax in (left, right)]
    assert sizes == [[29, 3], [20, 2]]
    _render(fig)
    with pytest.raises(ValueError, match="do not index"):
        render.plot_skeleton_mapping(kinect, render.chains_from_parents(KINECT_PARENTS), [40],
                                     hml, [])


# ---------------------------------------------------- training: loss curves, stick-figure grids

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
                     and len(c._segments3d) == 4 * _bone_count(KINEMATIC_CHAINS)]
        assert len(skeletons) == 1
        # Poses are told apart by time: four distinct colours.
        assert len(np.unique(skeletons[0].get_colors(), axis=0)) == 4
    _render(fig)


def test_stick_grid_share_all_gives_every_panel_one_height_range():
    # A second motion 1 m higher: with one shared height range both panels show both heights.
    groups = {"low": {"a": _motion(20)}, "high": {"b": _motion(20, seed=1, shift=(2.0, 1.0, 0.0))}}
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


# ----------------------------------------------------------------- evaluation: metric intervals

ROWS = {"Ground truth": {"FID": (0.1, 0.01), "R@3": (0.9, 0.02)},
        "Base MDM": {"FID": (2.0, 0.3), "R@3": (0.5, 0.05), "MModality": (1.0, 0.1)}}


def test_metric_intervals_one_panel_per_metric():
    fig = render.plot_metric_intervals(ROWS, ["R@3", "FID", "MModality"], reference="Ground truth",
                                       title="t", columns=2)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["R@3", "FID", "MModality"]
    assert len(fig.axes) == 4                                        # 2 x 2, the last hidden
    r3, fid, mm = shown
    assert len(r3.containers) == 2 and len(mm.containers) == 1       # GT has no MModality
    assert fid.containers[1].lines[0].get_xdata()[0] == pytest.approx(2.0)
    assert fid.lines[-1].get_xdata()[0] == pytest.approx(0.1)        # the reference line
    assert [t.get_text() for t in r3.get_yticklabels()] == ["Ground truth", "Base MDM"]


def test_metric_intervals_reject_bad_input():
    with pytest.raises(ValueError, match="reference"):
        render.plot_metric_intervals(ROWS, ["FID"], reference="nope")
    with pytest.raises(ValueError, match="at least one"):
        render.plot_metric_intervals({}, ["FID"])


# ------------------------------------------------------------------ fitness: confusion matrices

def test_confusion_matrices_are_row_normalised_heat_maps():
    counts = {"real": np.array([[8, 2, 0], [1, 18, 1], [0, 5, 5]]),
              "base": np.array([[3, 3, 4], [0, 0, 0], [2, 2, 6]])}
    fig = render.plot_confusion_matrices(counts, title="protocol")
    heat = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in heat] == ["real", "base"]
    assert len(fig.axes) == 3                          # two panels and one shared colour bar
    cells = [float(t.get_text()) for t in heat[0].texts]
    np.testing.assert_allclose(cells, (counts["real"] / counts["real"].sum(1, keepdims=True))
                               .ravel(), atol=0.005)
    assert len(heat[1].texts) == 6                     # the empty row is left blank
    assert [t.get_text() for t in heat[0].get_yticklabels()] == ["1 (n=10)", "2 (n=20)",
                                                                  "3 (n=10)"]


def test_confusion_matrices_reject_bad_input():
    with pytest.raises(ValueError, match="shape"):
        render.plot_confusion_matrices({"x": np.ones((2, 3))})
    with pytest.raises(ValueError, match="no confusion"):
        render.plot_confusion_matrices({})


def test_confusion_matrices_wrap_into_lines_and_name_their_classes():
    labels = [f"m{k:02d}" for k in range(1, 6)]
    counts = {name: np.eye(5, dtype=int) * 3 for name in ("a", "b", "c")}
    fig = render.plot_confusion_matrices(counts, labels=labels, label="movement", columns=2,
                                         annotate=False)
    heat = [ax for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 4                          # three panels, no empty fourth, one bar
    assert [ax.get_ylabel() for ax in heat] == ["true movement", "", "true movement"]
    assert heat[1].get_xlabel() == "predicted movement" and not heat[0].texts
    assert heat[0].get_position().y0 > heat[2].get_position().y0       # c on the second line


# -------------------------------------------------------- videos: one motion, a grid of motions

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


def test_grid_video_has_one_frame_per_step_and_codec_sized_frames(tmp_path):
    grid = [[_motion(40), _motion(24, seed=1)], ["no clip of this grade", None]]
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
    grid = [[_motion(still_after, speed=0.05), _motion(60, seed=1, speed=0.05)]]
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


# ------------------------------------------------------------ squats: pelvis height over time

def test_pelvis_heights_draw_upright_squats_solid_with_their_mean_depth():
    sources = {"real": {1: [squat(bottom=0.8)], 3: [squat(bottom=0.5), squat(bottom=0.6)]},
               "model": {2: [lying(), squat(bottom=0.7, T=40)]}}
    fig = render.plot_pelvis_heights(sources, columns=2, title="m01")
    real, model = fig.axes[:2]
    assert [ax.get_title() for ax in (real, model)] == ["real", "model"]
    solid = [ln for ln in real.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
    assert len(solid) == 3                                  # each squat stands at both ends
    means = sorted(ln.get_ydata()[0] for ln in real.lines if ln.get_linestyle() == "--")
    assert means == pytest.approx([0.55, 0.8])               # grade 3's two squats, grade 1's
    # The lying figure is drawn dotted and left out of its grade's mean.
    assert [ln.get_linestyle() for ln in model.lines].count(":") == 1
    assert [ln.get_ydata()[0] for ln in model.lines if ln.get_linestyle() == "--"] == \
        pytest.approx([0.7])
    assert model.get_xlabel() == "time (s)" and real.get_ylabel() == "pelvis height (m)"
    _render(fig)


def test_pelvis_heights_reject_bad_input():
    with pytest.raises(ValueError, match="at least one source"):
        render.plot_pelvis_heights({"real": {1: []}})
    with pytest.raises(ValueError, match="grades must be"):
        render.plot_pelvis_heights({"real": {4: [squat()]}})
