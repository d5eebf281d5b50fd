"""Tests for the chapter-02 drawing functions of fmsnb.render: grade counts and joint mapping."""
import io

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from fmsnb import render
from fmsnb.fms import KINECT_PARENTS


def _png(fig) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.tell() > 0


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
    _png(fig)


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
    _png(fig)
    with pytest.raises(ValueError, match="do not index"):
        render.plot_skeleton_mapping(kinect, render.chains_from_parents(KINECT_PARENTS), [40],
                                     hml, [])
