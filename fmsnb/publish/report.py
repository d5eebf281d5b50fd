"""What every chapter reports besides its results: metrics files and a reproducibility footer.

Each chapter writes its numbers as JSON under `runs/<profile>/metrics/` (atomically), so later
chapters and readers can use them without re-running anything, and ends with a footer saying
which profile, seed, data, package version, git commit and device produced the page, and how
long it took. A run of a profile too long for `make book` (`long`) is published: its metrics,
its chapters' wall times, commit and date are copied into `book/results/<profile>/`, kept in
the repository, which the default book's chapters show beside their own numbers.
"""
from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import fmsnb
from fmsnb import atomic
from fmsnb.config import Profile
from fmsnb.corpora import describe


def _plain(value):
    """JSON-ready copies of numpy scalars and arrays, tuples and paths."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(cfg: Profile, name: str, metrics: dict) -> Path:
    """Write `runs/<profile>/metrics/<name>.json` atomically; returns its path."""
    path = cfg.run_dir / "metrics" / f"{name}.json"
    return atomic.write_text(path, json.dumps(_plain(metrics), indent=1))


def read_metrics(cfg: Profile, name: str) -> dict:
    path = cfg.run_dir / "metrics" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the chapter that writes {name!r} first")
    return json.loads(path.read_text())


def git_commit(root: Path) -> str:
    """The repository's commit (with '+changes' when the tree differs from it), or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, check=True).stdout
        return commit + ("+changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name() -> str:
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def footer(cfg: Profile, started: float) -> str:
    """A markdown footer for a chapter that began at `started` (time.time())."""
    rows = [("profile", f"`{cfg.name}`"), ("data", describe(cfg)), ("seed", str(cfg.seed)),
            ("fmsnb", fmsnb.__version__), ("git commit", git_commit(cfg.root)),
            ("device", device_name()), ("wall time", f"{time.time() - started:.0f} s")]
    return ("**Reproducibility.** " + "; ".join(f"{k}: {v}" for k, v in rows) + ".")


PUBLISHED_DIR = "book/results"
BUILD_FILE = "build.json"
# The figures a published run carries beside its numbers (under runs/<profile>/figures/): the
# squats' depth over time of chapters 04 and 07, which the default book shows for `long`.
PUBLISHED_FIGURES = ("finetuning/squat_pelvis_heights.png", "qualitative/squat_pelvis_heights.png")


def publish(cfg: Profile, chapter_seconds: dict[str, float]) -> Path:
    """Copy the run's metrics (`runs/<profile>/metrics/*.json`) and those of its
    `PUBLISHED_FIGURES` it made into `book/results/<profile>/` with build.json: the chapters'
    wall times (`chapter_seconds`, name -> s), their total, the commit, date, device and data.
    Returns the folder."""
    source = cfg.run_dir / "metrics"
    files = sorted(source.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{source}: no metrics to publish; execute the chapters first")
    folder = cfg.root / PUBLISHED_DIR / cfg.name
    commit = git_commit(cfg.root)       # before the copies below change the tree
    for path in files:
        atomic.write_text(folder / path.name, path.read_text())
    figures = [f for f in PUBLISHED_FIGURES if (cfg.run_dir / "figures" / f).is_file()]
    for name in figures:
        image = (cfg.run_dir / "figures" / name).read_bytes()
        atomic.write(folder / "figures" / name, lambda f, image=image: f.write(image))
    build = {"profile": cfg.name, "commit": commit, "device": device_name(),
             "data": describe(cfg), "date": time.strftime("%Y-%m-%d %H:%M"),
             "chapter_seconds": chapter_seconds, "total_seconds": sum(chapter_seconds.values()),
             "metrics": [p.stem for p in files], "figures": figures}
    atomic.write_text(folder / BUILD_FILE, json.dumps(build, indent=1))
    return folder


def published(root: Path, profile: str, page: str | None = None) -> dict | None:
    """A published run of `profile` (`publish`): {"build": build.json, "figures": {name: path
    of each published figure}, metrics name: dict}, or None when the repository holds none, or
    when the page asking is itself built with `profile` (`page`, as for `published_note`)."""
    folder = Path(root) / PUBLISHED_DIR / profile
    if page == profile or not (folder / BUILD_FILE).is_file():
        return None
    build = json.loads((folder / BUILD_FILE).read_text())
    return {"build": build,
            "figures": {name: folder / "figures" / name for name in build.get("figures", [])},
            **{name: json.loads((folder / f"{name}.json").read_text())
               for name in build["metrics"]}}


def published_note(run: dict | None, profile: str, shown: str = "column",
                   page: str | None = None) -> str:
    """One sentence on a published run (`published`) for the pages that show it as a `shown`
    (a table's column, a figure), on its absence, or, when the page itself is built with that
    profile (`page`), on why it is not shown."""
    if page == profile:
        return (f"This page is itself built with the `{profile}` profile, so its own numbers are "
                "the ones a published run would show.")
    if run is None:
        return (f"The repository keeps no published run of the `{profile}` profile "
                f"(`make {profile}` makes one).")
    b = run["build"]
    return (f"The `{b['profile']}` {shown} is a published run (`make {b['profile']}`, "
            f"book/results/{b['profile']}/): commit {b['commit']}, {b['date']}, its chapters "
            f"executed in {b['total_seconds'] / 60:.0f} minutes on {b['device']}, on {b['data']}.")
