"""What every chapter reports besides its results: metrics files and a reproducibility footer.

Each chapter writes its numbers as JSON under `runs/<profile>/metrics/` (atomically), so later
chapters and readers can use them without re-running anything, and ends with a footer saying
which profile, seed, data, package version, git commit and device produced the page, and how
long it took.
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
