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

from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from tqdm.auto import tqdm

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
