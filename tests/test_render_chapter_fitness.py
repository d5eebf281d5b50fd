import numpy as np
import pytest

from fmsnb import render


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
