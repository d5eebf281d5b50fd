"""Drawing motions with matplotlib: skeletons, stick-figure strips, the feature layout, videos.

Everything the book shows of a motion goes through here. Joints are global positions with Y up,
in metres (HumanML3D's convention); a skeleton is drawn from its kinematic chains (lists of joint
indices, each drawn as one polyline), so the same code draws the HumanML3D 22-joint skeleton
(the default chains) and the Azure Kinect 32-joint one (pass `chains_from_parents(parents)`).
The functions build `matplotlib.figure.Figure` objects directly rather than through pyplot: they
work under any backend, headless included, leave no global figure state behind, and return the
figure so that a notebook can show it, save it or add to it.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import seaborn as sns
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from tqdm.auto import tqdm

from fmsnb import physics
from fmsnb.humanml3d import FEATURE_GROUPS, FPS, KINEMATIC_CHAINS

Chains = Sequence[Sequence[int]]

# Camera (elevation, azimuth) in degrees for a body facing +Z with Y up; with
# `vertical_axis="y"`, azimuth 0 looks from +Z (the body's front) and 90 from +X (its left).
VIEWS = {
    "front": (30.0, 0.0),      # from the front and above
    "side": (5.0, 90.0),       # profile from the body's left, camera at hip height
    "side30": (15.0, 30.0),    # three-quarter view, 30 degrees round from the front
    "top": (89.0, 180.0),      # from above, front up the page (90 exactly: azimuth ambiguous)
}
# The three viewpoints of the paper's Figure 4 (qualitative results).
PAPER_VIEWS = ("side30", "side", "front")


def chains_from_parents(parents: Sequence[int]) -> list[list[int]]:
    """Chains of a skeleton given by its parent table (-1 marks the root): one per bone."""
    return [[int(p), i] for i, p in enumerate(parents) if p >= 0]


def _check_joints(joints: np.ndarray, ndim: int) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != ndim or joints.shape[-1] != 3:
        expect = "(J, 3)" if ndim == 2 else "(T, J, 3)"
        raise ValueError(f"joints must have shape {expect}, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or infinite values")
    return joints


def _bones(chains: Chains | None, n_joints: int) -> np.ndarray:
    """Bone index pairs (B, 2) from chains; the HumanML3D chains when chains is None."""
    if chains is None:
        if n_joints != 22:
            raise ValueError(f"no default chains for a {n_joints}-joint skeleton; pass chains "
                             "(e.g. chains_from_parents(parents))")
        chains = KINEMATIC_CHAINS
    bones = np.array([(a, b) for chain in chains for a, b in zip(chain[:-1], chain[1:])])
    if bones.size == 0 or bones.max() >= n_joints or bones.min() < 0:
        raise ValueError(f"chains {chains} do not index a {n_joints}-joint skeleton")
    return bones


def _segments(joints: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """Line segments (..., B, 2, 3) of poses (..., J, 3)."""
    return joints[..., bones, :]


def _frame_axis(ax, joints: np.ndarray, floor: float | None, view: str,
                grid: float = 0.5) -> None:
    """Frame a 3D axis around all of `joints` (..., 3): equal scale, the camera `view`, no box,
    and a ground plane at height `floor` (None: the lowest joint) ruled every `grid` metres."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; known: {sorted(VIEWS)}")
    points = joints.reshape(-1, 3)
    lo, hi = points.min(0), points.max(0)
    floor = lo[1] if floor is None else floor
    lo[1] = min(lo[1], floor)
    centre, half = (lo + hi) / 2, max((hi - lo).max() / 2, 0.5) * 1.1
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    # The ground is always below the body: draw in call order rather than by mplot3d's depth
    # sort, which would put the plane over the lower legs.
    ax.computed_zorder = False
    # Ground square over the visible XZ range, ruled on multiples of `grid`.
    x0, x1, z0, z1 = centre[0] - half, centre[0] + half, centre[2] - half, centre[2] + half
    gx, gz = np.meshgrid([x0, x1], [z0, z1])
    ax.plot_surface(gx, np.full_like(gx, floor), gz, color="0.88", alpha=0.6, shade=False)
    ax.add_collection3d(Line3DCollection(_grid_segments(x0, x1, z0, z1, floor, grid),
                                         colors="0.7", linewidths=0.5))
    elev, azim = VIEWS[view]
    ax.view_init(elev=elev, azim=azim, vertical_axis="y")


def _grid_segments(x0: float, x1: float, z0: float, z1: float, y: float,
                   step: float) -> np.ndarray:
    """Grid lines (L, 2, 3) at height y over [x0, x1] x [z0, z1], on multiples of `step`."""
    xs = np.arange(np.ceil(x0 / step), np.floor(x1 / step) + 1) * step
    zs = np.arange(np.ceil(z0 / step), np.floor(z1 / step) + 1) * step
    starts = np.concatenate([np.c_[xs, np.full_like(xs, z0)], np.c_[np.full_like(zs, x0), zs]])
    ends = np.concatenate([np.c_[xs, np.full_like(xs, z1)], np.c_[np.full_like(zs, x1), zs]])
    return np.insert(np.stack([starts, ends], axis=1), 1, y, axis=-1)   # [x, z] -> [x, y, z]


def draw_skeleton(ax, joints: np.ndarray, chains: Chains | None = None, *, color="C0",
                  alpha: float = 1.0, linewidth: float = 2.0, ground: bool = True,
                  floor: float | None = 0.0, view: str = "side30"):
    """Draw one pose, joints (J, 3) (Y up), on a 3D axis; returns the Line3DCollection.

    `chains` default to HumanML3D's (22 joints). With `ground`, the axis is also framed: equal
    scale, a ground plane at height `floor` (None: the pose's lowest joint) and the camera `view`.
    """
    joints = _check_joints(joints, ndim=2)
    if ground:
        _frame_axis(ax, joints, floor, view)
    lines = Line3DCollection(_segments(joints, _bones(chains, len(joints))), colors=color,
                             alpha=alpha, linewidths=linewidth)
    ax.add_collection3d(lines)
    return lines


def _pose_frames(n_frames: int, n_poses: int) -> np.ndarray:
    """`n_poses` frame indices spread evenly over the clip, first and last included."""
    return np.unique(np.linspace(0, n_frames - 1, min(n_poses, n_frames)).round().astype(int))


def plot_stick_figures(joints: np.ndarray, view: str | Sequence[str] = "side", n_poses: int = 5,
                       chains: Chains | None = None, *, fps: float = FPS, title: str | None = None,
                       floor: float | None = 0.0, cmap: str = "viridis",
                       panel_size: float = 3.6) -> Figure:
    """A motion, joints (T, J, 3), as `n_poses` overlaid poses coloured by time (cf. Figure 4).

    `view` is one name from VIEWS or a sequence of them (one panel each; PAPER_VIEWS gives the
    paper's three). The pelvis path is drawn on the ground as a thin grey line.
    """
    joints = _check_joints(joints, ndim=3)
    views = [view] if isinstance(view, str) else list(view)
    frames = _pose_frames(len(joints), n_poses)
    bones = _bones(chains, joints.shape[1])
    norm = Normalize(0.0, max(len(joints) - 1, 1) / fps)
    colors = colormaps[cmap](norm(frames / fps))
    segments = _segments(joints[frames], bones)                  # (P, B, 2, 3)
    seg_colors = np.repeat(colors, len(bones), axis=0)
    ground_y = joints[..., 1].min() if floor is None else floor
    path = joints[:, 0].copy()
    path[:, 1] = ground_y

    fig = Figure(figsize=(panel_size * len(views) + 0.8, panel_size), layout="constrained")
    for i, name in enumerate(views):
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        _frame_axis(ax, joints, floor, name)
        ax.plot(path[:, 0], path[:, 1], path[:, 2], color="0.4", linewidth=0.8)
        ax.add_collection3d(Line3DCollection(segments.reshape(-1, 2, 3), colors=seg_colors,
                                             linewidths=1.8))
        ax.set_title(name, fontsize=9)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=fig.axes, shrink=0.6, label="time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_feature_layout(features: np.ndarray, *, fps: float = FPS, title: str | None = None,
                        clip: float = 3.0) -> Figure:
    """Features (T, 263) as a heat map, dimensions down and time across, groups labelled.

    Each dimension is standardised over the clip's frames (a z-score; the colours saturate at
    +-`clip`), since the raw dimensions differ in scale by orders of magnitude; a constant
    dimension shows as 0.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != 263:
        raise ValueError(f"features must have shape (T, 263), got {features.shape}")
    std = features.std(0)
    z = (features - features.mean(0)) / np.where(std > 1e-8, std, 1.0)

    fig = Figure(figsize=(9, 6), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(z.T, aspect="auto", cmap="RdBu_r", vmin=-clip, vmax=clip,
                      interpolation="nearest", extent=(0, len(features) / fps, 263, 0))
    starts = [s.start for s in FEATURE_GROUPS.values()]
    ax.hlines(starts[1:], 0, len(features) / fps, colors="k", linewidths=1.0)
    ticks, labels = _group_ticks()
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("feature dimension")
    fig.colorbar(image, ax=ax, label="value, standardised per dimension over this clip (z-score)")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _group_ticks(min_rows: int = 12) -> tuple[list[float], list[str]]:
    """One y tick per feature group; neighbouring groups too thin to label apart share a tick."""
    spans = []                                                   # [(start, stop, label lines)]
    for name, rows in FEATURE_GROUPS.items():
        label = f"{name} [{rows.start}:{rows.stop}]"
        thin = rows.stop - rows.start < min_rows
        if thin and spans and spans[-1][1] - spans[-1][0] < min_rows:
            spans[-1] = (spans[-1][0], rows.stop, spans[-1][2] + [label])
        else:
            spans.append((rows.start, rows.stop, [label]))
    return [(a + b) / 2 for a, b, _ in spans], ["\n".join(lines) for _, _, lines in spans]


def animate(joints: np.ndarray, path: str | Path, fps: float = FPS, chains: Chains | None = None,
            *, view: str = "side30", size_px: int = 320, floor: float | None = 0.0,
            progress: bool = True) -> Path:
    """Write the motion, joints (T, J, 3), as a video at `path`; returns the path written.

    An .mp4 is encoded with the ffmpeg binary that imageio-ffmpeg ships; if that fails, the
    animation is written as a GIF beside it (same name, .gif) and that path is returned.
    """
    joints = _check_joints(joints, ndim=3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bones = _bones(chains, joints.shape[1])
    size_px = max(16, size_px // 16 * 16)                       # codec-friendly frame size
    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1), projection="3d")
    _frame_axis(ax, joints, floor, view)
    lines = Line3DCollection(_segments(joints[0], bones), colors="C0", linewidths=2.0)
    ax.add_collection3d(lines)

    # Rendering is inherently one frame at a time: matplotlib rasterises one scene per draw.
    frames = []
    for t in tqdm(range(len(joints)), desc=f"render {path.name}", disable=not progress):
        lines.set_segments(_segments(joints[t], bones))
        canvas.draw()
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return _write_video(frames, path, fps)


def _write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """Encode frames (H, W, 3) uint8 as an mp4 (or a GIF for a .gif path or when mp4 fails)."""
    if path.suffix.lower() != ".gif":
        try:
            imageio.mimwrite(path, frames, fps=fps, codec="libx264", pixelformat="yuv420p",
                             macro_block_size=16)
            return path
        except (ImportError, RuntimeError, OSError) as err:
            print(f"mp4 encoding failed for {path} ({err}); writing a GIF instead")
        path = path.with_suffix(".gif")
    imageio.mimwrite(path, frames, duration=1000 / fps, loop=0)
    return path


# ---------------------------------------------------------------- training chapters (03, 04)

def plot_loss_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                     title: str | None = None, ylabel: str = "training loss",
                     log: bool | None = None) -> Figure:
    """Training losses, {label: (steps (N,), losses (N,))}, as one line per run against the
    optimiser step. The loss axis is logarithmic when `log`, by default when the losses span
    more than a factor of 3 (a long run's fall would flatten everything after it on a linear
    axis), with ticks at 1, 2, 3 and 5 times powers of ten labelled as plain numbers."""
    if not curves:
        raise ValueError("no loss curves to draw: pass {label: (steps, losses)}")
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    # Runs that differ only in their condition can overlap exactly: distinct dash patterns and
    # decreasing widths keep every curve visible on top of the others.
    dashes = ("-", "--", ":", "-.")
    for k, (label, (steps, losses)) in enumerate(curves.items()):
        steps, losses = np.asarray(steps, dtype=float), np.asarray(losses, dtype=float)
        if steps.shape != losses.shape or steps.ndim != 1 or len(steps) == 0:
            raise ValueError(f"curve {label!r}: steps {steps.shape} and losses {losses.shape} "
                             "must be two non-empty 1-d arrays of one length")
        ax.plot(steps, losses, dashes[k % len(dashes)], marker="o" if len(steps) < 12 else None,
                markersize=3, linewidth=max(2.4 - 0.5 * k, 1.0), label=label)
    losses = np.concatenate([np.asarray(c[1], dtype=float) for c in curves.values()])
    if log if log is not None else losses.min() > 0 and losses.max() > 3 * losses.min():
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _panel_boxes(motions: list[np.ndarray], floor: float | None) -> list[np.ndarray]:
    """For each motion (T, J, 3), two corners (2, 3) of a box around it, every box of one size
    and one height range: panels framed by them share a scale, so heights compare across them."""
    lo = np.array([m.reshape(-1, 3).min(0) for m in motions])
    hi = np.array([m.reshape(-1, 3).max(0) for m in motions])
    y_lo = min(lo[:, 1].min(), floor if floor is not None else np.inf)
    y_hi = hi[:, 1].max()
    half = max((hi - lo)[:, [0, 2]].max(), y_hi - y_lo) / 2
    centre = (lo + hi) / 2
    return [np.array([[c[0] - half, y_lo, c[2] - half], [c[0] + half, y_hi, c[2] + half]])
            for c in centre]


def plot_stick_grid(groups: Mapping[str, Mapping[str, np.ndarray]], *, view: str = "side",
                    n_poses: int = 5, ncols: int = 1, panel_size: float = 3.0,
                    floor: float | None = 0.0, share: str = "all", fps: float = FPS,
                    cmap: str = "viridis", title: str | None = None, wrap: int = 60) -> Figure:
    """Motions side by side as stick figures: {group title: {panel title: joints (T, 22, 3)}}.

    Each group (e.g. one model, or one caption) is a row of panels with its title above it;
    groups fill `ncols` columns. With share="all" every panel has one scale and one height
    range, so that a squat that goes deeper is drawn lower wherever it is; with share="group"
    only the panels of a group do (for groups of unlike motions, e.g. a walk and a squat). All
    panels share one time colour scale (the longest motion's). Each panel shows `n_poses` poses
    spread over its motion and the pelvis path on the ground.
    """
    if not groups or any(not panels for panels in groups.values()):
        raise ValueError("need at least one group, each with at least one motion")
    if share not in ("all", "group"):
        raise ValueError(f"share must be 'all' or 'group', got {share!r}")
    grouped = [[_check_joints(j, ndim=3) for j in panels.values()] for panels in groups.values()]
    motions = [m for group in grouped for m in group]
    boxes = iter(_panel_boxes(motions, floor) if share == "all" else
                 [box for group in grouped for box in _panel_boxes(group, floor)])
    longest = max(len(m) for m in motions)
    norm = Normalize(0.0, max(longest - 1, 1) / fps)
    width = max(len(p) for p in groups.values())
    nrows = -(-len(groups) // ncols)
    height = (panel_size + 0.5) * nrows
    fig = Figure(figsize=(panel_size * width * ncols, height + 0.8), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(height, 0.8))
    subfigs = np.atleast_1d(top.subfigures(nrows, ncols)).ravel()
    joints_iter = iter(motions)
    for subfig, (group, panels) in zip(subfigs, groups.items()):
        subfig.suptitle(textwrap.fill(group, wrap), fontsize=10, fontweight="bold")
        for k, label in enumerate(panels):
            joints, box = next(joints_iter), next(boxes)
            ax = subfig.add_subplot(1, width, k + 1, projection="3d")
            _frame_axis(ax, box, floor, view)
            frames = _pose_frames(len(joints), n_poses)
            bones = _bones(None, joints.shape[1])          # HumanML3D's chains: 22 joints
            path = joints[:, 0].copy()
            path[:, 1] = box[0, 1] if floor is None else floor      # on the drawn ground
            ax.plot(path[:, 0], path[:, 1], path[:, 2], color="0.4", linewidth=0.8)
            colors = np.repeat(colormaps[cmap](norm(frames / fps)), len(bones), axis=0)
            ax.add_collection3d(Line3DCollection(
                _segments(joints[frames], bones).reshape(-1, 2, 3), colors=colors,
                linewidths=1.8))
            ax.set_title(label, fontsize=9)
    for subfig in subfigs[len(groups):]:
        subfig.set_visible(False)
    # One horizontal colour bar under all groups (subfigures cannot share a colorbar's axes).
    bottom.colorbar(ScalarMappable(norm=norm, cmap=cmap),
                    cax=bottom.add_axes((0.3, 0.55, 0.4, 0.2)), orientation="horizontal",
                    label="time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# --- Chapters 04 and 07: how deep the squats go, as the pelvis's height over time ---

def plot_pelvis_heights(sources: Mapping[str, Mapping[int, Sequence[np.ndarray]]], *,
                        fps: float = FPS, columns: int = 4, panel_size: float = 2.8,
                        title: str | None = None) -> Figure:
    """Squats as the pelvis's height above the floor over time, one panel per source
    ({source: {grade: [joints (T, 22, 3), ...]}}, e.g. the real clips and each model), one
    line per motion coloured by grade, every panel on one height and time scale.

    A motion that starts and ends upright (`physics.squat_posture`), the only kind the squat
    measure counts, is drawn solid with a dot at its lowest point; any other is dotted. A
    dashed line per grade marks the mean lowest height of its counted motions, the depth the
    tables report, so a model whose grades come out different shows three separate levels.
    """
    if not sources or any(not any(len(m) for m in by_grade.values())
                          for by_grade in sources.values()):
        raise ValueError("need at least one source, each with at least one motion")
    grades = sorted({g for by_grade in sources.values() for g in by_grade})
    if not set(grades) <= set(GRADE_COLORS):
        raise ValueError(f"grades must be among {sorted(GRADE_COLORS)}, got {grades}")
    columns = min(columns, len(sources))
    n_rows = -(-len(sources) // columns)
    fig = Figure(figsize=(panel_size * columns, 0.8 * panel_size * n_rows + 0.7),
                 layout="constrained")
    axes = fig.subplots(n_rows, columns, sharex=True, sharey=True, squeeze=False)
    for ax in axes.ravel()[len(sources):]:
        ax.set_visible(False)
    for ax, (source, by_grade) in zip(axes.ravel(), sources.items()):
        for grade, motions in sorted(by_grade.items()):
            color, lowest = GRADE_COLORS[grade], []
            for joints in motions:
                joints = _check_joints(joints, ndim=3)
                height = joints[:, 0, 1]
                t = np.arange(len(height)) / fps
                posture = physics.squat_posture(joints)
                if posture["starts_upright"] and posture["ends_upright"]:
                    lowest.append(height.min())
                    ax.plot(t, height, color=color, linewidth=1.1, alpha=0.8)
                    ax.plot(t[height.argmin()], height.min(), "o", color=color, markersize=3)
                else:
                    ax.plot(t, height, ":", color=color, linewidth=1.0, alpha=0.6)
            if lowest:
                ax.axhline(np.mean(lowest), color=color, linestyle="--", linewidth=0.9)
        ax.set_title(textwrap.fill(source, 34), fontsize=9)
        ax.grid(color="0.92")
    for ax in axes[:, 0]:
        ax.set_ylabel("pelvis height (m)")
    for column in range(columns):      # the lowest panel of each column carries the time axis
        ax = axes[(len(sources) - 1 - column) // columns, column]
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("time (s)")
    handles = [Line2D([], [], color=GRADE_COLORS[g], label=f"grade {g}") for g in grades]
    handles += [Line2D([], [], color="k", linestyle=":", label="not upright at start and end"),
                Line2D([], [], color="k", linestyle="--", label="mean lowest height (upright)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False,
               fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# --- Chapter 07 (qualitative results): many motions animated side by side in one video ---

def _grid_cell_box(joints: np.ndarray, half: float, floor: float) -> np.ndarray:
    """Corner points (2, 3) of a box of half-width `half` centred on a motion's extent, for
    `_frame_axis` to frame one grid panel at a scale shared with the other panels."""
    lo, hi = joints.reshape(-1, 3).min(0), joints.reshape(-1, 3).max(0)
    lo[1] = min(lo[1], floor)
    centre = (lo + hi) / 2
    return np.stack([centre - half, centre + half])


def animate_grid(joints_grid: Sequence[Sequence[np.ndarray | str | None]],
                 row_labels: Sequence[str], col_labels: Sequence[str], path: str | Path,
                 fps: float = FPS, chains: Chains | None = None, *, title: str | None = None,
                 cell_labels: Sequence[Sequence[str]] | None = None, view: str = "side30",
                 panel_px: int = 160, max_fps: float = 10.0, max_half: float = 1.5,
                 floor: float = 0.0, progress: bool = True) -> Path:
    """One video of a grid of motions, `joints_grid[row][col]` joints (T, J, 3), played together.

    Every panel is a 3D stick figure (right limbs red, left limbs blue, spine grey) on a ground
    plane, seen by the same fixed camera `view`; a cell that is a string shows that text instead
    (e.g. why it is empty), None leaves it blank. Panels share one scale (the largest motion's
    extent, capped at `max_half` metres either side of the centre, so one drifting motion does
    not shrink all the others; a motion larger than that gets a panel framed on its own), so
    heights can be compared across panels. Shorter motions hold their last pose. Frames are
    subsampled by a whole step to at most `max_fps` per second (real time is kept). Written as
    an .mp4 with imageio-ffmpeg, or a GIF where that fails (see `animate`); returns the path.
    """
    from fmsnb.viewer import CHAIN_COLORS   # the interactive player's colours, one per chain

    rows = [list(row) for row in joints_grid]
    if not rows or len(rows) != len(row_labels) or any(len(r) != len(col_labels) for r in rows):
        raise ValueError(f"joints_grid must be {len(row_labels)} rows (row_labels) of "
                         f"{len(col_labels)} cells (col_labels); got rows of "
                         f"{[len(r) for r in rows]}")
    if cell_labels is not None and [len(r) for r in cell_labels] != [len(r) for r in rows]:
        raise ValueError("cell_labels must have the shape of joints_grid")
    if fps <= 0 or max_fps <= 0:
        raise ValueError(f"fps and max_fps must be positive, got {fps} and {max_fps}")
    motions = {(i, j): _check_joints(cell, ndim=3) for i, row in enumerate(rows)
               for j, cell in enumerate(row) if not (cell is None or isinstance(cell, str))}
    if not motions:
        raise ValueError(f"joints_grid for {path} holds no motion")
    chains = KINEMATIC_CHAINS if chains is None else chains
    bones = _bones(chains, next(iter(motions.values())).shape[1])
    bone_colors = [CHAIN_COLORS[c % len(CHAIN_COLORS)] for c, chain in enumerate(chains)
                   for _ in chain[1:]]
    step = int(np.ceil(fps / max_fps))
    index = np.arange(0, max(len(m) for m in motions.values()), step)

    # Layout in pixels: a title band and a column-label band on top, a row-label band on the
    # left; the frame size is rounded up to the codec's 16-pixel blocks.
    top, left = (44 if title else 22), 26
    width = -(-(left + panel_px * len(col_labels)) // 16) * 16
    height = -(-(top + panel_px * len(rows)) // 16) * 16
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    if title:
        fig.text(0.5, 1 - 4 / height, title, ha="center", va="top", fontsize=9, weight="bold")
    for j, label in enumerate(col_labels):
        fig.text((left + (j + 0.5) * panel_px) / width, 1 - (top - 4) / height, label,
                 ha="center", va="bottom", fontsize=8)
    for i, label in enumerate(row_labels):
        fig.text(4 / width, 1 - (top + (i + 0.5) * panel_px) / height, label, rotation=90,
                 ha="left", va="center", fontsize=8)

    extents = {k: (m.reshape(-1, 3).max(0) - m.reshape(-1, 3).min(0)).max() / 2
               for k, m in motions.items()}
    shared = min(max(extents.values()), max_half)
    lines = {}
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            rect = ((left + j * panel_px) / width, 1 - (top + (i + 1) * panel_px) / height,
                    panel_px / width, panel_px / height)
            label = cell_labels[i][j] if cell_labels is not None else ""
            if (i, j) not in motions:
                ax = fig.add_axes(rect)
                ax.set_axis_off()
                ax.text(0.5, 0.5, cell or "", ha="center", va="center", fontsize=7, wrap=True,
                        color="0.3", transform=ax.transAxes)
                continue
            joints = motions[i, j]
            ax = fig.add_axes(rect, projection="3d")
            box = _grid_cell_box(joints, max(shared, extents[i, j]), floor)
            _frame_axis(ax, box[:, None], floor, view)
            ax.set_box_aspect((1, 1, 1), zoom=1.5)      # the default leaves wide empty margins
            if label:
                ax.text2D(0.5, 0.02, label, ha="center", va="bottom", fontsize=6, color="0.3",
                          transform=ax.transAxes)
            lines[i, j] = Line3DCollection(_segments(joints[0], bones), colors=bone_colors,
                                           linewidths=1.6, animated=True)
            ax.add_collection3d(lines[i, j])
    clock = fig.text(1 - 4 / width, 1 - 4 / height, "", ha="right", va="top", fontsize=7,
                     animated=True)

    # Everything static is drawn once; each frame restores it and draws only the skeletons
    # (projected with the panel's fixed camera) and the clock, which keeps a 15-panel grid fast.
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for t in tqdm(index, desc=f"render {Path(path).name}", disable=not progress):
        canvas.restore_region(background)
        for key, collection in lines.items():
            joints = motions[key]
            collection.set_segments(_segments(joints[min(t, len(joints) - 1)], bones))
            collection.do_3d_projection()
            collection.axes.draw_artist(collection)
        clock.set_text(f"t = {t / fps:.1f} s")
        fig.draw_artist(clock)
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_video(frames, path, fps / step)


# --- Chapter 02 (data alignment): the FMS episodes per grade, and the joint mapping ---

GRADE_COLORS = {1: "C3", 2: "C7", 3: "C2"}     # red for the weakest grade, green for the best


def plot_grade_counts(movement_grade: Mapping[str, Mapping[int, int]], *,
                      title: str | None = None) -> Figure:
    """Episodes per movement as bars stacked by grade: {movement: {grade 1..3: count}}.

    The legend gives each grade's total, so the skew towards grade 2 reads off the figure.
    """
    if not movement_grade:
        raise ValueError("no movements to draw: pass {movement: {grade: count}}")
    grades = sorted({g for counts in movement_grade.values() for g in counts})
    if not set(grades) <= set(GRADE_COLORS):
        raise ValueError(f"grades must be among {sorted(GRADE_COLORS)}, got {grades}")
    codes = list(movement_grade)
    counts = np.array([[movement_grade[m].get(g, 0) for g in grades] for m in codes])  # (M, G)
    if (counts < 0).any():
        raise ValueError("episode counts must not be negative")
    bottoms = np.cumsum(counts, axis=1) - counts                      # stack grade on grade
    fig = Figure(figsize=(max(6.0, 0.6 * len(codes) + 1.0), 3.8), layout="constrained")
    ax = fig.add_subplot()
    for k, grade in enumerate(grades):
        ax.bar(codes, counts[:, k], bottom=bottoms[:, k], color=GRADE_COLORS[grade],
               label=f"grade {grade} ({counts[:, k].sum()})")
    ax.set_ylabel("episodes")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_skeleton_mapping(source: np.ndarray, source_chains: Chains, dropped: Sequence[int],
                          target: np.ndarray, placed: Sequence[int], *,
                          titles: tuple[str, str] = ("source", "target"),
                          view: str = "side30") -> Figure:
    """One pose before and after a change of skeleton, side by side: `source` joints (J1, 3)
    drawn with `source_chains` and the joints that are `dropped` marked red; `target` joints
    (22, 3), HumanML3D's skeleton, with the joints that had to be `placed` (no counterpart in
    the source) marked orange. Both poses have Y up."""
    source, target = _check_joints(source, ndim=2), _check_joints(target, ndim=2)
    panels = ((source, source_chains, list(dropped), "C3"), (target, None, list(placed), "C1"))
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    for k, (joints, chains, marked, colour) in enumerate(panels):
        if any(not 0 <= i < len(joints) for i in marked):
            raise ValueError(f"marked joints {marked} do not index a {len(joints)}-joint pose")
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        draw_skeleton(ax, joints, chains, view=view, floor=None, color="0.45")
        others = np.setdiff1d(np.arange(len(joints)), marked)
        ax.scatter(*joints[others].T, color="k", s=10, depthshade=False)
        if marked:
            ax.scatter(*joints[marked].T, color=colour, s=30, depthshade=False)
        ax.set_title(titles[k], fontsize=10)
    return fig


# --- Chapter 06 (fitness classification): confusion matrices as heat maps ---

def plot_confusion_matrices(matrices: Mapping[str, np.ndarray], *, labels: Sequence = (1, 2, 3),
                            title: str | None = None, panel_size: float = 2.6,
                            label: str = "grade", columns: int | None = None,
                            annotate: bool = True) -> Figure:
    """Confusion matrices, counts (K, K) with rows = true class and columns = predicted, as
    row-normalised heat maps on one colour scale (0..1), one panel per entry of `matrices`,
    `columns` panels to a line (all on one line by default), one colour bar for all.

    With `annotate`, each cell shows the share of its row (the recall on the diagonal); each
    row label gives the row's count, so that a share is read against the number of motions
    behind it. A row without motions stays blank. `label` names the classes on the axes
    ("true grade", "predicted grade").
    """
    if not matrices:
        raise ValueError("no confusion matrices to draw")
    columns = min(columns or len(matrices), len(matrices))
    n_rows = -(-len(matrices) // columns)
    fig = Figure(figsize=(panel_size * columns + 0.9, (panel_size + 0.5) * n_rows),
                 layout="constrained")
    axes = fig.subplots(n_rows, columns, squeeze=False).ravel()
    for ax in axes[len(matrices):]:                  # the last line's empty places
        ax.remove()
    axes = axes[:len(matrices)]
    for k, (ax, (name, counts)) in enumerate(zip(axes, matrices.items())):
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (len(labels), len(labels)) or (counts < 0).any():
            raise ValueError(f"confusion matrix {name!r} must be non-negative counts of shape "
                             f"{(len(labels), len(labels))}, got shape {counts.shape}")
        rows = counts.sum(1, keepdims=True)
        shares = np.divide(counts, rows, out=np.full(counts.shape, np.nan), where=rows > 0)
        sns.heatmap(shares, ax=ax, vmin=0.0, vmax=1.0, cmap="Blues", annot=annotate, fmt=".2f",
                    square=True, cbar=False, linewidths=0.5, linecolor="white",
                    xticklabels=list(labels),
                    yticklabels=[f"{g} (n={int(n)})" for g, n in zip(labels, rows[:, 0])])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f"predicted {label}")
        ax.set_ylabel(f"true {label}" if k % columns == 0 else "")
        ax.tick_params(axis="y", rotation=0)
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormaps["Blues"]), ax=list(axes),
                 label="share of the row", shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# --- Chapter 05 (quantitative results): metrics with their 95% intervals, one panel each ---

def plot_metric_intervals(rows: Mapping[str, Mapping[str, tuple[float, float]]],
                          metrics: Sequence[str], *, reference: str | None = None,
                          title: str | None = None, columns: int = 4,
                          panel_width: float = 2.6) -> Figure:
    """Rows (models or motion sets) as points with 95% interval bars, one panel per metric,
    `columns` panels to a line.

    rows: {row: {metric: (mean, ci)}}; a row without a metric is left out of that panel.
    `reference` names a row also drawn as a dashed vertical line across its panel (e.g. the
    ground truth), so the other rows are read against it. Panels have their own scales:
    the metrics differ in units and are compared within a panel, never across.
    """
    if not rows or not metrics:
        raise ValueError("need at least one row and one metric to draw")
    if reference is not None and reference not in rows:
        raise ValueError(f"reference row {reference!r} is not among the rows {list(rows)}")
    names = list(rows)
    ncols = min(columns, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(panel_width * ncols + 2.2, (0.4 * len(names) + 0.8) * nrows + 0.4),
                 layout="constrained")
    grid = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    for ax in grid.ravel()[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(grid.ravel(), metrics):
        for y, name in enumerate(names):
            if metric in rows[name]:
                mean, ci = rows[name][metric]
                ax.errorbar(mean, y, xerr=ci, fmt="o", color=f"C{y}", capsize=3, markersize=4)
        if reference is not None and metric in rows[reference]:
            ax.axvline(rows[reference][metric][0], color="0.5", linestyle="--", linewidth=0.8)
        ax.set_title(metric, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="0.9")
    for ax in grid[:, 0]:
        ax.set_yticks(range(len(names)), names, fontsize=8)
    grid[0, 0].set_ylim(len(names) - 0.5, -0.5)        # first row on top, as in the table
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
