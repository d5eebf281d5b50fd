import pytest

from fmsnb import render

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
