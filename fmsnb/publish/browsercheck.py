"""Checking the built HTML book in headless Chromium: each page loads and shows no broken output.

`serve(folder)` serves a built site on 127.0.0.1 at a free port from a background thread;
`open_browser()` starts headless Chromium through Selenium with the system chromedriver (so
selenium-manager never downloads one) and fails with install instructions when either is missing;
`check_page(driver, url, screenshot)` opens one page, saves a full-page screenshot and returns a
`PageReport` whose `problems` are: a non-200 response or an empty title; a Python traceback, an
error output or papermill's error marker; an stderr output with an exception line (`ValueError:
...`; warnings pass); an `<img>` that did not load; a `<video>` whose source does not fetch (200,
non-empty, an MP4 `ftyp` box) or, when the browser says it can decode the codec (H.264 is missing
from some Chromium builds, which says nothing about the page, so there it is only a note), whose
metadata does not load (readyState >= 1, finite duration) or whose muted playback decodes no
frame; a SEVERE console message from the page's own origin (other origins, e.g. a CDN unreachable
offline, are `notes`; harmless toolchain messages are listed in `IGNORED`); and, per
`.fmsnb-player`, a "Play" click that does not advance the slider's active index within
`PLAY_SECONDS` of real time (headless virtual time does not drive plotly) or a "Pause" that does
not stop it.
"""
from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from fmsnb.publish.book import toc_entries

CHROMIUM = os.environ.get("FMSNB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FMSNB_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = ("install them with `sudo apt-get install -y chromium chromium-driver` (Debian; "
                "or point FMSNB_CHROMIUM / FMSNB_CHROMEDRIVER at a Chrome and its driver), or set "
                "FMSNB_SKIP_BROWSER=1 to skip the browser tests")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--enable-unsafe-swiftshader", "--window-size=1280,900")
PLAY_SECONDS = 2.0          # real time within which Play must move the slider
LOAD_SECONDS = 10.0         # for images, video metadata and plotly to settle after page load
MAX_SCREENSHOT_PX = 16000   # page height cap for a full-page screenshot
# SEVERE console messages of the toolchain itself, harmless for the reader: (substring, why).
IGNORED = (
    ("Identifier 'THEBE_JS_URL' has already been declared",
     "Jupyter Book 1.x on Sphinx 7.4 emits sphinx-thebe's config <script> twice; the first one "
     "defines everything"),
    ("Got invalid theme mode",
     "pydata-sphinx-theme logs this on a fresh profile with no stored light/dark mode"),
    ("/favicon.ico - Failed to load resource",
     "the browser, not the page, asks for /favicon.ico; the book has none"),
)
# A line naming an exception the way a traceback ends: `ValueError: ...`, `pkg.SomeError`.
EXCEPTION_LINE = r"^\s*([A-Za-z_][\w.]*)?(Error|Exception)\b(:|\s*$)"


@dataclass
class PageReport:
    """What `check_page` found on one page: problems (none means the page is fine) and notes."""
    url: str
    title: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: int = 0
    videos: int = 0
    players: int = 0
    screenshot: Path | None = None

    def add(self, problems: list[str], notes: list[str] = ()) -> None:
        """Append findings of one check."""
        self.problems += problems
        self.notes += notes


def toc_pages(root: Path) -> list[str]:
    """The HTML pages of `root/_toc.yml` (root and every file entry), e.g. `book/intro.html`."""
    toc = Path(root) / "_toc.yml"
    with open(toc) as f:
        entries = toc_entries(yaml.safe_load(f) or {})
    if not entries:
        raise ValueError(f"{toc}: no `root` or `file` entries")
    return [f"{e.removesuffix('.ipynb').removesuffix('.md')}.html" for e in entries]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):     # keep pytest's output to the checks themselves
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 at a free port; yields the base URL ending in '/'."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"nothing to serve: {folder} is not a folder")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def missing_browser() -> str | None:
    """Why headless Chromium cannot run here (with how to fix it), or None when it can."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER)
               if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if missing:
        return f"the browser tests need {' and '.join(missing)}: {INSTALL_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the browser tests need selenium: `pip install -e '.[dev]'`"
    return None


@contextmanager
def open_browser() -> Iterator:
    """A headless Chromium WebDriver with a throwaway profile and the browser console log on."""
    reason = missing_browser()
    if reason:
        raise RuntimeError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fmsnb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for(driver, script: str, *args, seconds: float = LOAD_SECONDS):
    """Poll `script` (a JS function body, given `args`) until it returns truthy or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        value = driver.execute_script(script, *args)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


_ERROR_OUTPUT_JS = r"""
const found = [];
const text = document.body.innerText;
if (text.includes('Traceback (most recent call last)')) found.push('a Python traceback is shown');
if (document.querySelector('#papermill-error-cell') ||
    text.includes('An Exception was encountered at'))
  found.push("papermill's error marker is shown (a cell failed)");
for (const el of document.querySelectorAll('.output.traceback, .output_error'))
  found.push('an error output: ' + el.innerText.trim().split('\n').slice(-1)[0].slice(0, 200));
const exception = new RegExp(arguments[0]);
for (const el of document.querySelectorAll('.output.stderr, .output_stderr')) {
  const line = el.innerText.split('\n').find(l => exception.test(l));
  if (line) found.push('an stderr output with an exception: ' + line.trim().slice(0, 200));
}
return found;
"""


def _error_outputs(driver) -> list[str]:
    return driver.execute_script(_ERROR_OUTPUT_JS, EXCEPTION_LINE)


def _images(driver) -> tuple[int, list[str]]:
    """Every <img> loaded (lazy ones are made eager); returns (count, problems)."""
    driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    _wait_for(driver, "return [...document.images].every(i => i.complete)")
    broken = driver.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => (i.currentSrc || i.src || '(no src)').slice(0, 120))")
    return (driver.execute_script("return document.images.length"),
            [f"image did not load: {src}" for src in broken])


_FETCH_JS = """
const [url, done] = arguments;
fetch(url).then(r => r.arrayBuffer().then(b => {
  const head = String.fromCharCode(...new Uint8Array(b.slice(4, 8)));
  done({status: r.status, size: b.byteLength, head: head});
})).catch(e => done({status: 0, size: 0, head: '', error: String(e)}));
"""

_VIDEOS_JS = """
return [...document.querySelectorAll('video')].map(v => {
  const source = v.querySelector('source');
  const url = v.currentSrc || v.src || (source && source.src) || '';
  const type = (source && source.type) || 'video/mp4';
  return {url: url, type: type, playable: v.canPlayType(type) !== '' &&
            (type !== 'video/mp4' || v.canPlayType('video/mp4; codecs="avc1.42E01E"') !== ''),
          ready: v.readyState, duration: v.duration, error: v.error && v.error.code};
});
"""

# Play video i muted until a frame is decoded (or give up), then pause and rewind; frames decoded.
_DECODE_JS = """
const [i, seconds, done] = arguments;
const v = document.querySelectorAll('video')[i];
const decoded = () => v.getVideoPlaybackQuality().totalVideoFrames;
const finish = () => { v.pause(); v.currentTime = 0; done(decoded()); };
v.muted = true;
v.play().catch(() => {});
const start = performance.now();
(function poll() {
  if (decoded() > 0 || performance.now() - start > 1000 * seconds) finish();
  else setTimeout(poll, 50);
})();
"""


def _videos(driver) -> tuple[int, list[str], list[str]]:
    """Every <video>: its source fetches (200, non-empty, MP4 `ftyp` box) and, where the browser
    can decode its codec, its metadata loads (readyState >= 1, finite duration > 0) and muted
    playback decodes a frame. Returns (count, problems, notes)."""
    _wait_for(driver, "return [...document.querySelectorAll('video')].every("
                      "v => v.readyState >= 1 || v.error || v.networkState === 3 "   # no source
                      "|| v.canPlayType('video/mp4') === '')")
    videos = driver.execute_script(_VIDEOS_JS)
    problems, notes = [], []
    for i, v in enumerate(videos):
        name = f"video {i + 1} ({v['url'][:60] or 'no source'})"
        if not v["url"]:
            problems.append(f"{name}: no source URL")
            continue
        got = driver.execute_async_script(_FETCH_JS, v["url"])
        if got["status"] != 200 or got["size"] == 0:
            problems.append(f"{name}: fetching it gave HTTP {got['status']}, {got['size']} bytes"
                            + (f" ({got['error']})" if got.get("error") else ""))
            continue
        if v["type"] == "video/mp4" and got["head"] != "ftyp":
            problems.append(f"{name}: not an MP4 file (no ftyp box at its start)")
        if not v["playable"]:
            notes.append(f"{name}: this browser cannot decode {v['type']} (H.264); only the "
                         "file was checked")
        elif v["error"] or v["ready"] < 1 or not (0 < (v["duration"] or 0) < float("inf")):
            problems.append(f"{name}: the browser did not load it (readyState {v['ready']}, "
                            f"duration {v['duration']}, MediaError code {v['error']})")
        elif driver.execute_async_script(_DECODE_JS, i, LOAD_SECONDS) == 0:
            problems.append(f"{name}: playing it decoded no frame within {LOAD_SECONDS} s")
    return len(videos), problems, notes


# The slider's active index; plotly leaves it undefined when the slider is hidden (one frame).
_SLIDER_JS = ("const a = arguments[0]._fullLayout.sliders[0].active; "
              "return Number.isInteger(a) ? a : null")
# plotly.js rejects an interrupted Plotly.animate's promise with no reason and its buttons do not
# catch it, so Pause during playback logs this; only ignored while the players are exercised.
PAUSE_REJECTION = r"Uncaught \(in promise\)$"


def _poll_slider(driver, gd, before: int, seconds: float) -> int:
    """The slider's active index once it differs from `before`, or after `seconds` of real time."""
    deadline = time.monotonic() + seconds
    now = before
    while now == before and time.monotonic() < deadline:
        time.sleep(0.05)
        now = driver.execute_script(_SLIDER_JS, gd)
    return now


def check_players(driver, play_seconds: float = PLAY_SECONDS) -> tuple[int, list[str]]:
    """Click "Play" in every `.fmsnb-player`: its slider's active index must increase within
    `play_seconds` of real time; then "Pause" must hold it still. Returns (count, problems)."""
    players = driver.find_elements("css selector", ".fmsnb-player")
    problems = []
    for i, player in enumerate(players, 1):
        name = f"player {i} (#{player.get_attribute('id')})"
        graphs = player.find_elements("css selector", ".plotly-graph-div")
        if not graphs:
            problems.append(f"{name}: no plotly graph inside")
            continue
        gd = graphs[0]
        ready = _wait_for(driver, "const gd = arguments[0]; return !!(gd._fullLayout && "
                          "gd._fullLayout.sliders && gd._fullLayout.sliders.length && "
                          "gd.querySelector('.updatemenu-button'))", gd)
        if not ready:
            problems.append(f"{name}: plotly did not draw it (no slider or buttons)")
            continue
        buttons = {b.text.strip(): b
                   for b in gd.find_elements("css selector", ".updatemenu-button")}
        before = driver.execute_script(_SLIDER_JS, gd)
        if "Play" not in buttons or "Pause" not in buttons or before is None:
            problems.append(f"{name}: no Play/Pause buttons or no visible slider "
                            f"(buttons {sorted(buttons)}, slider index {before})")
            continue
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", gd)
        buttons["Play"].click()
        after = _poll_slider(driver, gd, before, play_seconds)
        buttons["Pause"].click()
        if after <= before:
            problems.append(f"{name}: Play did not advance the slider within {play_seconds} s "
                            f"(active index stayed {before})")
            continue
        paused = driver.execute_script(_SLIDER_JS, gd)
        if _poll_slider(driver, gd, paused, 0.5) != paused:
            problems.append(f"{name}: the slider kept moving after Pause")
    return len(players), problems


def _console(driver, origin: str, ignore: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """SEVERE console entries since the last read: (problems from `origin`, notes from others).
    `IGNORED` messages and those matching a regex of `ignore` are dropped."""
    problems, notes = [], []
    for entry in driver.get_log("browser"):
        message = entry["message"]
        if (entry["level"] != "SEVERE" or any(known in message for known, _ in IGNORED)
                or any(re.search(pattern, message) for pattern in ignore)):
            continue
        url = re.match(r"(\S+://\S+)", message)
        if url and not url.group(1).startswith(origin):
            notes.append(f"console ({entry['source']}, another origin): {message[:200]}")
        else:
            problems.append(f"console {entry['source']} error: {message[:300]}")
    return problems, notes


def screenshot_full_page(driver, path: Path) -> Path:
    """A PNG of the whole page (not just the window), up to MAX_SCREENSHOT_PX tall, at `path`."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"],
            "height": min(size["height"], MAX_SCREENSHOT_PX), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": clip})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def check_page(driver, url: str, screenshot: Path | None = None) -> PageReport:
    """Open `url` and check it (see the module docstring); saves a screenshot when given a path."""
    origin = re.match(r"\w+://[^/]+", url).group(0)
    driver.get_log("browser")                       # drop what earlier pages logged
    driver.get(url)
    report = PageReport(url, title=driver.title.strip())
    status = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0]; return n && n.responseStatus")
    if status != 200:
        report.problems.append(f"HTTP status {status}")
    if not report.title:
        report.problems.append("the page has no title")
    report.add(_error_outputs(driver))
    report.images, problems = _images(driver)
    report.add(problems)
    report.videos, problems, notes = _videos(driver)
    report.add(problems, notes)
    report.add(*_console(driver, origin))           # what loading the page logged
    report.players, problems = check_players(driver)
    report.add(problems)
    report.add(*_console(driver, origin, ignore=(PAUSE_REJECTION,)))
    if screenshot is not None:
        driver.execute_script("window.scrollTo(0, 0)")
        report.screenshot = screenshot_full_page(driver, screenshot)
    return report
