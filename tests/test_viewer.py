"""Tests of the interactive skeleton player: offline HTML, frames, traces, padding, the cap."""
import re

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from fmsnb import viewer
from fmsnb.humanml3d import KINEMATIC_CHAINS
from fmsnb.viewer import build_figure, frame_indices, motion_player, save_player_html

N_CHAINS = len(KINEMATIC_CHAINS)


def walking(n_frames: int, seed: int, speed: float = 0.01) -> np.ndarray:
    """A random standing pose (22, 3) sliding along X by `speed` metres per frame: (T, 22, 3)."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, 0.2, (22, 3)) + [0.0, 1.0, 0.0]
    shift = np.arange(n_frames)[:, None, None] * np.array([speed, 0.0, 0.0])
    return pose + shift


def chain_frames(fig, trace: int) -> np.ndarray:
    """The plotted points of one chain trace in every animation frame: (F, L, 3)."""
    return np.array([[frame.data[trace].x, frame.data[trace].y, frame.data[trace].z]
                     for frame in fig.frames]).transpose(0, 2, 1)


def script_sources(html: str) -> list[str]:
    return re.findall(r"<script[^>]*\bsrc\s*=", html, flags=re.IGNORECASE)


def test_player_html_is_offline_and_clickable():
    player = motion_player({"grade 1": walking(12, 0), "grade 3": walking(8, 1)},
                           title="squat", include_plotlyjs=True)
    html = player._repr_html_()
    assert get_plotlyjs() in html                   # plotly.js inline, whole
    assert not script_sources(html)                 # no CDN or any external script
    assert "cdn.plot.ly/plotly" not in html.replace(get_plotlyjs(), "")
    assert html.startswith('<div class="fmsnb-player"')
    assert '"label":"Play"' in html.replace(" ", "") and '"label":"Pause"' in html.replace(" ", "")
    assert '"grade 1"' in html and '"grade 3"' in html
    assert player.names == ("grade 1", "grade 3")


def test_plotlyjs_only_in_first_player_by_default(monkeypatch):
    monkeypatch.setattr(viewer, "_players_built", 0)
    motions = {"a": walking(5, 0)}
    first, second = motion_player(motions), motion_player(motions)
    assert get_plotlyjs() in first.html
    assert get_plotlyjs() not in second.html and len(second.html) < 100_000
    assert not script_sources(second.html)
    ids = [re.search(r'class="fmsnb-player" id="([^"]+)"', p.html).group(1) for p in (first, second)]
    assert ids[0] != ids[1]
    assert get_plotlyjs() in motion_player(motions, include_plotlyjs=True).html


def test_frames_slider_and_buttons():
    fig, times = build_figure({"a": walking(30, 0), "b": walking(50, 1)}, fps=20)
    assert len(fig.frames) == 50 == len(times)
    np.testing.assert_allclose(times, np.arange(50) / 20)
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 50
    assert [s.args[0][0] for s in steps] == [f.name for f in fig.frames]
    play, pause = fig.layout.updatemenus[0].buttons
    assert (play.label, pause.label) == ("Play", "Pause")
    assert play.args[1]["frame"]["duration"] == pytest.approx(50.0)   # 1 / 20 s


def test_one_trace_per_chain_per_motion_with_labels():
    motions = {"grade 1": walking(6, 0), "grade 2": walking(6, 1), "grade 3": walking(6, 2)}
    fig, _ = build_figure(motions)
    chains = fig.data[:3 * N_CHAINS]
    assert len(fig.data) == 3 * N_CHAINS + 2        # + ground grid + labels
    assert [len(t.x) for t in chains] == [len(c) for c in KINEMATIC_CHAINS] * 3
    assert all(len(f.data) == 3 * N_CHAINS and list(f.traces) == list(range(3 * N_CHAINS))
               for f in fig.frames)
    labels = fig.data[-1]
    assert labels.mode == "text" and list(labels.text) == list(motions)
    # Side by side along X, in dict order: each label over its own motion.
    label_x = np.array(labels.x)
    assert np.all(np.diff(label_x) > 0)
    pelvis_x = [chains[m * N_CHAINS].x[0] for m in range(3)]
    assert np.all(np.argsort(np.abs(np.subtract.outer(pelvis_x, label_x)), axis=1)[:, 0] == [0, 1, 2])


def test_shorter_motion_holds_its_last_pose():
    fig, _ = build_figure({"long": walking(20, 0), "short": walking(7, 1)})
    short = chain_frames(fig, N_CHAINS)             # first chain of the second motion
    long = chain_frames(fig, 0)
    assert np.all(short[7:] == short[6])
    assert not np.allclose(short[5], short[6])      # it moved until then
    assert not np.allclose(long[7:], long[6])       # the long one keeps moving


def test_cap_subsamples_at_a_whole_step_in_real_time():
    assert frame_indices(100, 120)[1] == 1
    index, step = frame_indices(300, 120)
    assert step == 3 and len(index) == 100 and index[-1] == 297
    fig, times = build_figure({"a": walking(300, 0, speed=0.01)}, fps=20, max_frames=120)
    assert len(fig.frames) == 100 <= 120
    np.testing.assert_allclose(times, index / 20)
    assert fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"] == pytest.approx(150.0)
    # Frame k shows source frame 3k: the pose moved 3k centimetres along X.
    x = chain_frames(fig, 0)[..., 0]
    np.testing.assert_allclose(x - x[0], np.broadcast_to(0.03 * np.arange(100)[:, None], x.shape),
                               atol=1.5e-3)


def test_coordinates_rounded_and_inside_fixed_equal_ranges():
    fig, _ = build_figure({"a": walking(40, 0, speed=0.05), "b": walking(25, 1)})
    points = np.concatenate([chain_frames(fig, t).reshape(-1, 3) for t in range(2 * N_CHAINS)])
    np.testing.assert_allclose(points * 1000, np.round(points * 1000), atol=1e-6)
    scene = fig.layout.scene
    ranges = np.array([scene.xaxis.range, scene.yaxis.range, scene.zaxis.range])
    assert np.all(points >= ranges[:, 0]) and np.all(points <= ranges[:, 1])
    aspect = np.array([scene.aspectratio.x, scene.aspectratio.y, scene.aspectratio.z])
    scale = aspect / (ranges[:, 1] - ranges[:, 0])
    np.testing.assert_allclose(scale, scale[0], rtol=1e-3)
    assert scene.xaxis.autorange is False


def test_y_up_data_is_rotated_not_mirrored():
    # Heights go to plotly's Z; the map is a rotation (determinant +1), so left stays left.
    basis = viewer._plot_coords(np.eye(3))
    np.testing.assert_allclose(basis[1], [0, 0, 1])
    assert np.linalg.det(basis) == pytest.approx(1.0)


def test_ground_grid_at_the_floor():
    fig, _ = build_figure({"a": walking(5, 0)}, floor=0.0)
    heights = [z for z in fig.data[-2].z if z is not None]
    assert heights and set(heights) == {0.0}
    lowest = walking(5, 0)[..., 1].min()
    fig, _ = build_figure({"a": walking(5, 0)}, floor=None)
    assert {z for z in fig.data[-2].z if z is not None} == {round(lowest, 3)}


@pytest.mark.parametrize("joints, match", [
    (np.zeros((10, 22)), "'bad'.*shape"),
    (np.zeros((10, 22, 2)), "'bad'.*shape"),
    (np.zeros((0, 22, 3)), "'bad'.*T >= 1"),
    (np.zeros((10, 15, 3)), "'bad'.*22 joints"),
    (np.full((10, 22, 3), np.nan), "'bad'.*NaN"),
])
def test_bad_motions_raise(joints, match):
    with pytest.raises(ValueError, match=match):
        build_figure({"good": walking(5, 0), "bad": joints})


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="non-empty dict"):
        build_figure({})
    with pytest.raises(ValueError, match="non-empty dict"):
        build_figure(walking(5, 0))
    with pytest.raises(ValueError, match="fps"):
        build_figure({"a": walking(5, 0)}, fps=0)
    with pytest.raises(ValueError, match="max_frames"):
        build_figure({"a": walking(5, 0)}, max_frames=0)
    with pytest.raises(ValueError, match="chain"):
        build_figure({"a": walking(5, 0)}, chains=[[0]])


def test_save_player_html_is_a_standalone_offline_page(tmp_path):
    path = save_player_html({"grade 1": walking(10, 0), "grade 2": walking(14, 1)},
                            tmp_path / "sub" / "player.html", title="a <squat>")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>a &lt;squat&gt;</title>" in page
    assert get_plotlyjs() in page and not script_sources(page)
    assert 'class="fmsnb-player"' in page and '"grade 2"' in page
