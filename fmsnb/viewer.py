"""An interactive 3D skeleton player for the book: motions side by side, play/pause and a time slider.

The rendered book is static HTML built from notebooks executed beforehand, so a player has to be
complete inside one cell's output and work offline: `motion_player` returns an object whose
`_repr_html_` is a plotly figure with plotly.js inlined (no CDN at build or view time). plotly.js
is about 4.8 MB, so by default only the first player built in a Python process carries it and
later ones reuse the page's `window.Plotly`; each chapter is executed in its own kernel, so that
is the first player of each page (pass `include_plotlyjs=True` to force it, e.g. when cells are
re-run out of order in a live notebook). Several motions (e.g. one caption generated at FMS
grades 1, 2 and 3) share one 3D scene, each centred in its own slot along X with its label above
it, so one camera shows them all from the same side as the reader turns it. Each motion is drawn
as polylines along the kinematic chains (HumanML3D's by default: right limbs red, left limbs
blue, spine grey) over a ground grid at the floor height; axis ranges are fixed over the whole
animation and equal in scale, so the figure neither jumps nor distorts. Motions of different
lengths play together, shorter ones holding their last pose; coordinates are rounded to
millimetres and motions longer than `max_frames` are subsampled by a whole step (keeping real
time), to keep the page small. `save_player_html` writes the same player as a standalone page.
"""
from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from fmsnb.humanml3d import FPS, KINEMATIC_CHAINS

Chains = Sequence[Sequence[int]]

CSS_CLASS = "fmsnb-player"     # outer div of every player, for styling and browser tests
MAX_FRAMES = 120               # animation frames per player at most (6 s at 20 fps)
GRID_STEP = 0.5                # metres between ground grid lines
GAP = 0.6                      # metres of free floor between neighbouring motions
HEIGHT_PX = 480
# HumanML3D chain order: right leg, left leg, spine, right arm, left arm. Other skeletons'
# chains cycle through the same colours.
CHAIN_COLORS = ("#d62728", "#1f77b4", "#555555", "#d62728", "#1f77b4")
# Initial camera direction (plotly coordinates, Z up): in front of the bodies, a little to the
# viewer's right and above, so depth is readable without hiding anything. The projection is
# orthographic, so every motion in the row is drawn at the same scale wherever it stands; an
# orthographic camera's zoom is the size of the scene box (`aspectratio`), not the eye distance.
CAMERA_EYE = {"x": 0.3, "y": -1.0, "z": 0.27}
ZOOM = 3.0                     # scene box size when its projected width fills the plot
PLOT_RATIO = 1.9               # roughly width / height of the plot area in a book page

_players_built = 0             # players built in this process; the first one carries plotly.js


@dataclass
class Player:
    """A built player: the plotly figure and its self-contained HTML fragment.

    `names` are the motions' labels in display order (left to right), `frame_times` the time in
    seconds of each animation frame, `n_frames` their number.
    """
    figure: go.Figure = field(repr=False)
    html: str = field(repr=False)
    names: tuple[str, ...]
    frame_times: np.ndarray = field(repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.frame_times)

    def _repr_html_(self) -> str:
        return self.html


def _check_motions(motions: Mapping[str, np.ndarray], chains: Chains) -> dict[str, np.ndarray]:
    """Validated copies, joints (T, J, 3) float64, of a non-empty {label: joints} mapping."""
    if not isinstance(motions, Mapping) or not motions:
        raise ValueError("motions must be a non-empty dict {label: joints (T, J, 3)}, got "
                         f"{type(motions).__name__}")
    if not chains or min(len(c) for c in chains) < 2:
        raise ValueError(f"every chain needs at least two joints, got {chains}")
    if min(min(c) for c in chains) < 0:
        raise ValueError(f"chains hold negative joint indices: {chains}")
    needed = max(max(c) for c in chains) + 1
    checked = {}
    for name, joints in motions.items():
        joints = np.asarray(joints, dtype=np.float64)
        if joints.ndim != 3 or joints.shape[2] != 3 or joints.shape[0] < 1:
            raise ValueError(f"motion {name!r}: joints must have shape (T, J, 3) with T >= 1, "
                             f"got {joints.shape}")
        if joints.shape[1] < needed:
            raise ValueError(f"motion {name!r}: the chains index {needed} joints but it has "
                             f"{joints.shape[1]}")
        if not np.isfinite(joints).all():
            raise ValueError(f"motion {name!r}: joints contain NaN or infinite values")
        checked[str(name)] = joints
    return checked


def frame_indices(n_frames: int, max_frames: int = MAX_FRAMES) -> tuple[np.ndarray, int]:
    """Source frame indices to animate and their step: every `step`-th frame, at most `max_frames`.

    A whole step keeps the frames evenly spaced in time, so the animation still runs at real
    speed (each frame lasts `step / fps`).
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    step = math.ceil(n_frames / max_frames)
    return np.arange(0, n_frames, step), step


def _place(motions: dict[str, np.ndarray], index: np.ndarray) -> list[np.ndarray]:
    """Each motion at the animated frames, (F, J, 3): shorter ones hold their last pose; each is
    centred on its own horizontal bounding box and put in its slot along X."""
    posed = [joints[np.minimum(index, len(joints) - 1)] for joints in motions.values()]
    lows = [p.reshape(-1, 3).min(0) for p in posed]
    highs = [p.reshape(-1, 3).max(0) for p in posed]
    spacing = max(hi[0] - lo[0] for lo, hi in zip(lows, highs)) + GAP
    return [p - (lo + hi) / 2 * [1.0, 0.0, 1.0] + [i * spacing, 0.0, 0.0]
            for i, (p, lo, hi) in enumerate(zip(posed, lows, highs))]


def _plot_coords(points: np.ndarray) -> np.ndarray:
    """Y-up data (..., 3) to plotly's Z-up scene, rounded to millimetres.

    (x, y, z) -> (x, -z, y) is a rotation about X, not a swap of axes, so the body is not
    mirrored. plotly's turntable camera always keeps its Z up; this is why the data is turned
    rather than the camera's `up` vector changed.
    """
    return np.round(np.stack([points[..., 0], -points[..., 2], points[..., 1]], -1), 3)


def _grid_trace(x_range: tuple[float, float], z_range: tuple[float, float], floor: float) -> dict:
    """Ground grid lines every GRID_STEP metres over the given data ranges, as one line trace."""
    (x0, x1), (z0, z1) = x_range, z_range
    xs = np.arange(x0, x1 + 1e-9, GRID_STEP)
    zs = np.arange(z0, z1 + 1e-9, GRID_STEP)
    ends = [((x, z0), (x, z1)) for x in xs] + [((x0, z), (x1, z)) for z in zs]
    ends = np.array(ends)                                       # (L, 2, [x, z])
    lines = _plot_coords(np.insert(ends, 1, floor, axis=-1))   # (L, 2, 3) plotly coords
    # One trace for all lines: None between lines breaks the polyline.
    coords = [list(itertools.chain.from_iterable((a, b, None) for a, b in lines[:, :, k].tolist()))
              for k in range(3)]
    return dict(type="scatter3d", mode="lines", x=coords[0], y=coords[1], z=coords[2],
                line=dict(color="#c8c8c8", width=2), hoverinfo="skip", showlegend=False)


def _outward(lo: float, hi: float) -> tuple[float, float]:
    """The range widened by a margin and snapped outward to the grid."""
    return (math.floor((lo - 0.3) / GRID_STEP) * GRID_STEP,
            math.ceil((hi + 0.3) / GRID_STEP) * GRID_STEP)


def build_figure(motions: Mapping[str, np.ndarray], fps: float = FPS, title: str | None = None,
                 chains: Chains = KINEMATIC_CHAINS, floor: float | None = 0.0,
                 max_frames: int = MAX_FRAMES) -> tuple[go.Figure, np.ndarray]:
    """The animated plotly figure of `motions` {label: joints (T, J, 3)} and its frame times (F,).

    Traces: one line trace per chain per motion (motion-major, in dict order), then the ground
    grid, then one text trace with the labels. Frames update only the chain traces.
    `floor` is the ground height in metres (HumanML3D puts the floor at 0); None puts the grid
    under the lowest joint of all motions.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    motions = _check_motions(motions, chains)
    index, step = frame_indices(max(len(j) for j in motions.values()), max_frames)
    placed = _place(motions, index)
    everything = np.concatenate([p.reshape(-1, 3) for p in placed])
    lo, hi = everything.min(0), everything.max(0)
    floor = float(lo[1]) if floor is None else float(floor)

    # Per chain, the plotly coordinates of all frames at once: (F, L, 3) -> lists per frame.
    chain_xyz = [_plot_coords(p[:, list(chain)]).transpose(2, 0, 1).tolist()
                 for p in placed for chain in chains]      # per trace: 3 x (F, L)
    colors = [CHAIN_COLORS[c % len(CHAIN_COLORS)] for _ in placed for c in range(len(chains))]

    def chain_traces(f: int) -> list[dict]:
        return [dict(type="scatter3d", x=x[f], y=y[f], z=z[f]) for x, y, z in chain_xyz]

    base = [dict(trace, mode="lines+markers", line=dict(color=color, width=7),
                 marker=dict(color=color, size=2.5), hoverinfo="skip", showlegend=False,
                 name=f"{name} chain {c}")
            for trace, color, (name, c) in zip(
                chain_traces(0), colors, itertools.product(motions, range(len(chains))))]

    x_range, z_range = _outward(lo[0], hi[0]), _outward(lo[2], hi[2])
    grid = _grid_trace(x_range, z_range, floor)
    # Labels in one row, above the highest head of all motions, each over its motion's slot.
    label_height = hi[1] + 0.25
    label_xyz = _plot_coords(np.array([[(p[..., 0].min() + p[..., 0].max()) / 2, label_height, 0.0]
                                       for p in placed]))
    labels = dict(type="scatter3d", mode="text", text=list(motions), x=label_xyz[:, 0].tolist(),
                  y=label_xyz[:, 1].tolist(), z=label_xyz[:, 2].tolist(),
                  textfont=dict(size=15, color="#222"), hoverinfo="skip", showlegend=False)

    times = index / fps
    names = [str(i) for i in index]
    n_chain_traces = len(chain_xyz)
    frames = [dict(name=name, data=chain_traces(f), traces=list(range(n_chain_traces)))
              for f, name in enumerate(names)]

    # Fixed, equal-scale ranges in plotly coordinates covering the whole animation.
    ranges = np.array([x_range, (-z_range[1], -z_range[0]),
                       (min(lo[1], floor) - 0.05, label_height + 0.1)])
    # Equal scale on all axes; zoomed so the box's projected width or height (the height seen
    # from the camera's elevation includes some of the depth) just fits the plot area.
    extent = ranges[:, 1] - ranges[:, 0]
    fit = max(extent[0], PLOT_RATIO * (extent[2] + 0.35 * extent[1]))
    aspect = ZOOM * extent / fit
    axis = dict(visible=False, autorange=False)
    frame_ms = 1000.0 * step / fps
    play = dict(label="Play", method="animate", args=[None, dict(
        frame=dict(duration=frame_ms, redraw=True), fromcurrent=True, mode="immediate",
        transition=dict(duration=0))])
    pause = dict(label="Pause", method="animate", args=[[None], dict(
        frame=dict(duration=0, redraw=False), mode="immediate", transition=dict(duration=0))])
    slider = dict(
        active=0, x=0.2, len=0.78, y=0.02, pad=dict(t=12, b=0),
        currentvalue=dict(prefix="t = ", font=dict(size=13, color="#222")),
        # The per-step tick labels would overprint each other; the current value is shown above.
        font=dict(color="rgba(0,0,0,0)"), ticklen=0, minorticklen=0,
        steps=[dict(label=f"{t:.2f} s", method="animate", args=[[name], dict(
            frame=dict(duration=0, redraw=True), mode="immediate", transition=dict(duration=0))])
            for t, name in zip(times, names)])
    layout = dict(
        title=dict(text=title) if title else None,
        height=HEIGHT_PX, margin=dict(l=0, r=0, t=40 if title else 10, b=40),
        showlegend=False, hovermode=False,
        scene=dict(xaxis=dict(axis, range=ranges[0].tolist()),
                   yaxis=dict(axis, range=ranges[1].tolist()),
                   zaxis=dict(axis, range=ranges[2].tolist()),
                   aspectmode="manual", aspectratio=dict(zip("xyz", aspect.round(4).tolist())),
                   camera=dict(eye=CAMERA_EYE, projection=dict(type="orthographic")),
                   dragmode="turntable"),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0.02, xanchor="left",
                          yanchor="top", pad=dict(t=30), showactive=False, buttons=[play, pause])],
        sliders=[slider])
    return go.Figure(data=base + [grid, labels], layout=layout, frames=frames), times


def _fragment(fig: go.Figure, div_id: str, include_plotlyjs: bool) -> str:
    """The player's HTML: an outer `fmsnb-player` div around plotly's div and script."""
    inner = fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs, div_id=f"{div_id}-plot",
                        auto_play=False, default_width="100%", default_height=f"{HEIGHT_PX}px",
                        config=dict(displaylogo=False, responsive=True))
    return f'<div class="{CSS_CLASS}" id="{div_id}">\n{inner}\n</div>'


def motion_player(motions: Mapping[str, np.ndarray], fps: float = FPS, title: str | None = None,
                  chains: Chains = KINEMATIC_CHAINS, floor: float | None = 0.0,
                  max_frames: int = MAX_FRAMES, include_plotlyjs: bool | None = None) -> Player:
    """An interactive player of `motions` {label: joints (T, J, 3)} (Y up, metres) for a notebook.

    Display it as a cell's output. `include_plotlyjs` None inlines plotly.js only in the first
    player of this Python process (the first of each executed chapter); True or False forces it.
    See `build_figure` for the other arguments.
    """
    global _players_built
    fig, times = build_figure(motions, fps, title, chains, floor, max_frames)
    if include_plotlyjs is None:
        include_plotlyjs = _players_built == 0
    _players_built += 1
    fragment = _fragment(fig, f"{CSS_CLASS}-{_players_built}", include_plotlyjs)
    return Player(figure=fig, html=fragment, names=tuple(str(n) for n in motions), frame_times=times)


def save_player_html(motions: Mapping[str, np.ndarray], path: str | Path, fps: float = FPS,
                     title: str | None = None, chains: Chains = KINEMATIC_CHAINS,
                     floor: float | None = 0.0, max_frames: int = MAX_FRAMES) -> Path:
    """Write the player as a standalone offline HTML page (plotly.js inline); returns the path."""
    fig, _ = build_figure(motions, fps, title, chains, floor, max_frames)
    body = _fragment(fig, CSS_CLASS, include_plotlyjs=True)
    heading = html.escape(title or "Motion player")
    page = (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{heading}</title>\n'
            f'</head>\n<body>\n{body}\n</body>\n</html>\n')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
