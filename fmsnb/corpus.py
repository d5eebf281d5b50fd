"""One corpus on disk in the HumanML3D layout, read by clip name.

Every corpus of a run (the HumanML3D stand-in, real HumanML3D, the aligned FMS clips) is a folder
of `new_joint_vecs/NAME.npy` features (T, 263), `new_joints/NAME.npy` joints (T, 22, 3) and split
files `train.txt`/`val.txt`/`test.txt` (`fmsnb.dataset` describes the layout and reads it for
training). `Corpus` is the chapters' view of such a folder: the names of a split, one clip's
features or joints, and, for the aligned FMS corpus, each clip's metadata (`fms_meta.json`:
subject, movement, grade, view, mirrored, ...) with `clips(...)` choosing clips by those fields,
and `read_grades` the grades that fine-tuning conditions the captions on. It reads numpy and JSON
only, so a page that just looks at clips imports nothing heavy.
"""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

# The layout's folders (`fmsnb.dataset` writes and reads them too) and the FMS metadata file.
FEATURES_DIR, JOINTS_DIR, TEXTS_DIR = "new_joint_vecs", "new_joints", "texts"
META_FILE = "fms_meta.json"


def read_fms_meta(root) -> dict[str, dict]:
    """The clip metadata of a written FMS corpus: name -> {subject, movement, episode, view,
    grade, expert_grades, mirrored, source, piece, start, end, frames}."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no FMS metadata file (written by write_fms_corpus)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a valid JSON file: {err}") from None


def read_grades(root) -> dict[str, int]:
    """Clip name -> consolidated FMS grade (1..3) of a written FMS corpus, from its metadata:
    what fine-tuning conditions the captions on."""
    return {name: int(info["grade"]) for name, info in read_fms_meta(root).items()}


class Corpus:
    """The HumanML3D-layout folder `root`, read by clip name."""

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r})"

    def names(self, split: str) -> list[str]:
        """The clip names of `split` ('train', 'val', 'test'), in the split file's order."""
        path = self.root / f"{split}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no split file {split!r} in this corpus")
        return path.read_text().split()

    def features(self, name: str) -> np.ndarray:
        """One clip's features (T, 263)."""
        return np.load(self.root / FEATURES_DIR / f"{name}.npy")

    def joints(self, name: str) -> np.ndarray:
        """One clip's global joint positions (T, 22, 3), metres, y up, floor at 0."""
        return np.load(self.root / JOINTS_DIR / f"{name}.npy")

    @cached_property
    def meta(self) -> dict[str, dict]:
        """An aligned FMS corpus's clip metadata (`read_fms_meta`), read once."""
        return read_fms_meta(self.root)

    def clips(self, *, movement: str | None = None, grade: int | None = None,
              view: str | None = None, mirrored: bool | None = None,
              split: str | None = None) -> list[str]:
        """The FMS clips whose metadata match every field given (None: any), in the split
        file's order when `split` is given, else sorted by name."""
        wanted = {"movement": movement, "grade": grade, "view": view, "mirrored": mirrored}
        wanted = {k: v for k, v in wanted.items() if v is not None}
        names = self.names(split) if split is not None else sorted(self.meta)
        return [n for n in names
                if all(self.meta.get(n, {}).get(k) == v for k, v in wanted.items())]
