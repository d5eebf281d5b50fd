"""The built book in headless Chromium: every toc page loads clean; the page checks catch faults.

Builds the book with the smoke profile once (fmsnb.publish.book.main), serves _build/html on
localhost and checks every page of _toc.yml with fmsnb.publish.browsercheck, saving full-page
screenshots under runs/smoke/screenshots/. Two synthetic pages test the checks themselves: a
clean one (image, video, skeleton player) must pass, a broken one must be flagged for each of its
faults.
Without Chromium and chromedriver the tests fail with install instructions;
FMSNB_SKIP_BROWSER=1 skips them (and the book build) instead.
"""
import os
import time
from pathlib import Path

import numpy as np
import pytest

from fmsnb import render, viewer
from fmsnb.config import load_profile
from fmsnb.publish import book, browsercheck

REPO = Path(__file__).resolve().parents[1]
PAGES = browsercheck.toc_pages(REPO)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver():
    reason = browsercheck.missing_browser()
    if os.environ.get("FMSNB_SKIP_BROWSER") == "1":
        pytest.skip("FMSNB_SKIP_BROWSER=1" + (f": {reason}" if reason else ""))
    if reason:                                  # CI must not pass without having looked
        pytest.fail(reason, pytrace=False)
    with browsercheck.open_browser() as d:
        yield d


@pytest.fixture(scope="module")
def book_site(driver):
    """The smoke-profile book built into _build/html and served; yields (base URL, shots dir)."""
    started = time.perf_counter()
    if book.main(["--profile", "smoke", "--root", str(REPO)]) != 0:
        pytest.fail("the book did not build with the smoke profile (see the output above)",
                    pytrace=False)
    print(f"\nbuilt the book in {time.perf_counter() - started:.1f} s")
    shots = load_profile("smoke", root=REPO).run_dir / "screenshots"
    with browsercheck.serve(REPO / "_build" / "html") as base:
        yield base, shots


@pytest.mark.parametrize("page", PAGES, ids=lambda p: Path(p).stem)
def test_book_page_renders_without_errors(driver, book_site, page):
    base, shots = book_site
    report = browsercheck.check_page(driver, base + page, shots / f"{Path(page).stem}.png")
    print(f"\n{page}: {report.images} images, {report.videos} videos, {report.players} players; "
          f"screenshot {report.screenshot}")
    for note in report.notes:
        print(f"  note: {note}")
    assert not report.problems, f"{page}:\n  " + "\n  ".join(report.problems)


def _walk(frames: int) -> np.ndarray:
    """A vertical stick of 22 joints swaying sideways, joints (frames, 22, 3)."""
    joints = np.zeros((frames, 22, 3))
    joints[..., 1] = np.linspace(0.0, 1.7, 22)
    joints[..., 0] = 0.3 * np.sin(np.arange(frames) / 5.0)[:, None] * joints[..., 1] / 1.7
    return joints


@pytest.fixture(scope="module")
def synthetic_site(tmp_path_factory):
    """A clean page (image, video, player) and a page with one of each fault; yields base URL."""
    site = tmp_path_factory.mktemp("site")
    motion = _walk(40)
    render.plot_stick_figures(motion, view=("side",)).savefig(site / "figure.png")
    render.animate(motion, site / "clip.mp4", progress=False)
    player = viewer.save_player_html({"sway": motion}, site / "player.html").read_text()
    prose = "<p>Error bars show one std; an error in the data would be caught.</p>"
    warning = '<div class="output stderr"><pre>UserWarning: a harmless warning</pre></div>'
    (site / "clean.html").write_text(player.replace("<body>", f"""<body>{prose}{warning}
<img src="figure.png"><video controls><source src="clip.mp4" type="video/mp4"></video>"""))

    fig, _ = viewer.build_figure({"sway": motion})
    fig.frames = ()                             # Play has nothing to animate
    frozen = fig.to_html(full_html=False, include_plotlyjs=True, div_id="frozen-plot")
    (site / "broken.html").write_text(f"""<!DOCTYPE html><html><head><title>broken</title></head>
<body>{prose}
<div class="output traceback"><pre>ValueError: boom in a cell</pre></div>
<div class="output stderr"><pre>loading...\nRuntimeError: no such file</pre></div>
<img src="missing.png"><video><source src="missing.mp4" type="video/mp4"></video>
<script>console.error("a script failed")</script>
<div class="fmsnb-player" id="frozen">{frozen}</div></body></html>""")
    with browsercheck.serve(site) as base:
        yield base


def test_clean_page_passes_every_check(driver, synthetic_site, tmp_path):
    report = browsercheck.check_page(driver, synthetic_site + "clean.html", tmp_path / "clean.png")
    assert report.problems == []
    assert (report.images, report.videos, report.players) == (1, 1, 1)
    assert report.screenshot.stat().st_size > 0


def test_broken_page_is_flagged_for_each_fault(driver, synthetic_site):
    report = browsercheck.check_page(driver, synthetic_site + "broken.html")
    problems = "\n".join(report.problems)
    expected = ["an error output: ValueError: boom in a cell",
                "stderr output with an exception: RuntimeError: no such file",
                "image did not load: " + synthetic_site + "missing.png",
                "missing.mp4): fetching it gave HTTP 404",
                '"a script failed"',
                "Play did not advance the slider"]
    for fault in expected:
        assert fault in problems, f"not flagged: {fault!r}; problems:\n{problems}"
    # Nothing else: the prose and the warning-only stderr pass; the 404s are also in the console.
    also = ["missing.png - Failed to load resource", "missing.mp4 - Failed to load resource"]
    assert [p for p in report.problems if not any(f in p for f in expected + also)] == []
