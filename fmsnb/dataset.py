"""The HumanML3D folder layout: writing it, and reading it back as training items.

Every corpus in the project (the HumanML3D stand-in, the FMS clips, real HumanML3D) lies on disk
in one layout so that one reader serves pretraining, fine-tuning and evaluation:
`new_joint_vecs/NAME.npy` features (T, 263), `new_joints/NAME.npy` joints (T, 22, 3),
`texts/NAME.txt` with one caption per line as `caption#word/POS word/POS ...#start#end`
(seconds; `0.0#0.0` is the whole clip), split files `train.txt`/`val.txt`/`test.txt` (one NAME
per line) and the feature normalisation `Mean.npy`/`Std.npy`. The write side validates before it
writes, so a bad clip is an error naming the clip. The read side follows the reference loader
(T2M / MDM `Text2MotionDatasetV2`): whole-clip captions keep the whole motion, timed captions make
sub-clips, clips outside 40..199 frames are dropped, and training crops to a multiple of 4 frames,
normalises and pads to 196. Broken files never stop a read: each is skipped, counted and reported.
`split_joints` reads a split's joints instead, for the measures that work on joints.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from fmsnb.corpus import FEATURES_DIR, JOINTS_DIR, TEXTS_DIR
from fmsnb.humanml3d import FEATURE_GROUPS, FPS, N_FEATURES, N_JOINTS

MEAN_FILE, STD_FILE = "Mean.npy", "Std.npy"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Group-averaged std below this is treated as a constant group (see `mean_std`).
MIN_STD = 1e-8


@dataclass
class Caption:
    """One caption of a clip. tokens are "word/POS" strings; start/end in seconds, both 0.0 for
    the whole clip, otherwise the sub-clip frames [int(start * 20), int(end * 20))."""
    text: str
    tokens: list[str]
    start: float = 0.0
    end: float = 0.0

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0

    def line(self) -> str:
        """The texts-file line `caption#tokens#start#end`."""
        return f"{self.text}#{' '.join(self.tokens)}#{float(self.start)}#{float(self.end)}"


def _check_name(name: str, what: str = "clip name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r} must be non-empty letters, digits, '_', '-', '.'")
    return name


def _check_caption(c: Caption, n_frames: int, where: str) -> None:
    if not c.text.strip() or any(ch in c.text for ch in "#\n\r"):
        raise ValueError(f"{where}: caption text {c.text!r} must be non-empty without '#' or newlines")
    bad = [t for t in c.tokens if not t or "/" not in t or any(ch in t for ch in "# \t\n\r")]
    if not c.tokens or bad:
        raise ValueError(f"{where}: caption {c.text!r} needs 'word/POS' tokens without '#' or "
                         f"whitespace, got {bad or c.tokens!r}")
    start, end = float(c.start), float(c.end)
    if c.whole_clip:
        return
    if not (np.isfinite(start) and np.isfinite(end) and 0.0 <= start < end):
        raise ValueError(f"{where}: caption {c.text!r} has start/end {start}/{end}; need "
                         "0 <= start < end, or 0.0/0.0 for the whole clip")
    if int(end * FPS) > n_frames:
        raise ValueError(f"{where}: caption {c.text!r} ends at {end} s (frame {int(end * FPS)}) "
                         f"beyond the clip's {n_frames} frames")


def _features_problem(features: np.ndarray) -> str | None:
    """What is wrong with a features array, or None if it is a valid (T, 263) finite array."""
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        return f"features must have shape (T, {N_FEATURES}), got {features.shape}"
    if not (np.issubdtype(features.dtype, np.floating) or np.issubdtype(features.dtype, np.integer)):
        return f"features must be real numbers, got dtype {features.dtype}"
    if not np.isfinite(features).all():
        return "features contain NaN or infinite values"
    return None


def _check_features(features: np.ndarray, where: str) -> np.ndarray:
    features = np.asarray(features)
    problem = _features_problem(features)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return features.astype(np.float32)


def write_clip(root, name: str, features: np.ndarray, joints: np.ndarray,
               captions: list[Caption]) -> None:
    """Write one clip into the layout under `root`: features (T, 263) to new_joint_vecs/NAME.npy,
    joints (T, 22, 3) to new_joints/NAME.npy (both float32) and the captions to texts/NAME.txt.
    Everything is validated before any file is written."""
    root = Path(root)
    where = f"clip {_check_name(name)!r} in {root}"
    features = _check_features(features, where)
    joints = np.asarray(joints)
    if joints.shape != (len(features), N_JOINTS, 3):
        raise ValueError(f"{where}: joints must have shape ({len(features)}, {N_JOINTS}, 3) to "
                         f"match the features, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError(f"{where}: joints contain NaN or infinite values")
    if not captions:
        raise ValueError(f"{where}: a clip needs at least one caption")
    for c in captions:
        _check_caption(c, len(features), where)
    for sub in (FEATURES_DIR, JOINTS_DIR, TEXTS_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    np.save(root / FEATURES_DIR / f"{name}.npy", features)
    np.save(root / JOINTS_DIR / f"{name}.npy", joints.astype(np.float32))
    (root / TEXTS_DIR / f"{name}.txt").write_text("".join(c.line() + "\n" for c in captions))


def write_splits(root, splits: dict[str, list[str]]) -> None:
    """Write one split file per key (`train` -> train.txt, ...) with one clip name per line."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split, names in splits.items():
        _check_name(split, "split name")
        for n in names:
            _check_name(n, f"clip name in split {split!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"split {split!r} for {root} lists a clip name more than once")
        (root / f"{split}.txt").write_text("".join(n + "\n" for n in names))


def mean_std(features_list: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's normalisation of features (T_i, 263) clips -> (mean (263,), std (263,)).

    Plain mean and (population) std over all frames of all clips, then each std is replaced by
    the mean std of its feature group ([0], [1:3], [3], ric, rot, velocity, contacts), so that
    dimensions of one kind share one scale. A group whose averaged std is below MIN_STD (a
    constant group, e.g. contacts of a corpus that never lifts a foot) gets std 1.0: normalising
    it is then a plain shift instead of a division by zero. Streams the clips (running sums in
    float64, shifted by the first clip's mean for accuracy), so the list may be a generator.
    """
    n, s1, s2, shift = 0, 0.0, 0.0, None
    for i, f in enumerate(features_list):
        f = _check_features(f, f"features #{i}").astype(np.float64)
        if shift is None and len(f):
            shift = f.mean(axis=0)
        d = f - (shift if shift is not None else 0.0)
        n, s1, s2 = n + len(f), s1 + d.sum(axis=0), s2 + (d * d).sum(axis=0)
    if n == 0:
        raise ValueError("mean_std needs at least one frame of features")
    mean = shift + s1 / n
    std = np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0.0))
    for group in FEATURE_GROUPS.values():
        g = std[group].mean()
        std[group] = g if g >= MIN_STD else 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _load_features_strict(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} not found")
    return _check_features(np.load(path, allow_pickle=False), str(path))


def write_mean_std(root, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Compute `mean_std` from the listed clips' new_joint_vecs and write Mean.npy / Std.npy
    under root (float32, (263,) each). A missing or bad clip is an error naming its file."""
    root = Path(root)
    if not names:
        raise ValueError(f"write_mean_std for {root} needs at least one clip name")
    mean, std = mean_std(_load_features_strict(root / FEATURES_DIR / f"{n}.npy") for n in names)
    np.save(root / MEAN_FILE, mean)
    np.save(root / STD_FILE, std)
    return mean, std


# ---------------------------------------------------------------- read side

MIN_FRAMES, MAX_FRAMES = 40, 200  # the reference keeps MIN_FRAMES <= T < MAX_FRAMES
MAX_LEN = 196                     # training pads every motion to this many frames
UNIT_LENGTH = 4                   # training lengths are multiples of this


def read_captions(path) -> list[Caption]:
    """Parse a texts file into Captions. Blank lines are ignored; a line without exactly four
    '#'-separated fields, with a non-numeric or infinite start/end, or with an empty caption or
    tokens field is a ValueError naming the file and line number. NaN start/end read as 0.0, as
    in the reference loader."""
    path = Path(path)
    captions = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("#")
        if len(fields) != 4:
            raise ValueError(f"{path}, line {number}: expected 4 '#'-separated fields "
                             f"(caption#tokens#start#end), got {len(fields)}")
        text, tokens, start, end = fields
        try:
            start, end = float(start), float(end)
        except ValueError:
            raise ValueError(f"{path}, line {number}: start/end {fields[2]!r}/{fields[3]!r} "
                             "are not numbers") from None
        if np.isinf(start) or np.isinf(end):     # no frame index to cut a sub-clip at
            raise ValueError(f"{path}, line {number}: start/end {fields[2]!r}/{fields[3]!r} "
                             "must be finite")
        if not text.strip() or not tokens.split():
            raise ValueError(f"{path}, line {number}: empty caption or tokens field")
        captions.append(Caption(text, tokens.split(),
                                0.0 if np.isnan(start) else start, 0.0 if np.isnan(end) else end))
    return captions


def read_mean_std(root) -> tuple[np.ndarray, np.ndarray]:
    """Mean.npy / Std.npy (263,) of a layout folder, validated (finite, std > 0)."""
    root = Path(root)
    arrays = []
    for file in (MEAN_FILE, STD_FILE):
        path = root / file
        if not path.is_file():
            raise FileNotFoundError(f"normalisation file {path} not found")
        arrays.append(np.load(path, allow_pickle=False))
    return _check_mean_std(*arrays, where=str(root))


def _check_mean_std(mean, std, where: str) -> tuple[np.ndarray, np.ndarray]:
    mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    for label, a in (("mean", mean), ("std", std)):
        if a.shape != (N_FEATURES,) or not np.isfinite(a).all():
            raise ValueError(f"{where}: {label} must be finite with shape ({N_FEATURES},), "
                             f"got shape {a.shape}")
    if (std <= 0).any():
        raise ValueError(f"{where}: std has {(std <= 0).sum()} non-positive entries")
    return mean, std


@dataclass
class MotionItem:
    """One training item: an unnormalised motion (T, 263) float32 and the captions that describe
    all of it; span is the frames [a, b) of a sub-clip of `clip`, None for the whole clip."""
    clip: str
    motion: np.ndarray
    captions: list[Caption]
    span: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """The clip name, or `NAME[a:b]` for a sub-clip."""
        return self.clip if self.span is None else f"{self.clip}[{self.span[0]}:{self.span[1]}]"


@dataclass
class SplitData:
    """The items of one split of a layout folder, with the normalisation and what was left out:
    `skipped` (path, reason) for broken input, `filtered` (path, reason) for clips the 40..199
    frame rule drops."""
    root: Path
    split: str
    items: list[MotionItem]
    mean: np.ndarray
    std: np.ndarray
    n_names: int
    skipped: list[tuple[str, str]]
    filtered: list[tuple[str, str]]

    @property
    def summary(self) -> dict[str, int]:
        sub = sum(item.span is not None for item in self.items)
        return {"names": self.n_names, "items": len(self.items), "whole_clips": len(self.items) - sub,
                "sub_clips": sub, "skipped": len(self.skipped), "filtered": len(self.filtered)}

    def report(self) -> str:
        """A readable account of the read: counts, then every skipped file with its reason."""
        s = self.summary
        lines = [f"{self.root} [{self.split}]: {s['names']} names -> {s['items']} items "
                 f"({s['whole_clips']} whole clips, {s['sub_clips']} sub-clips); "
                 f"{s['filtered']} outside {MIN_FRAMES}..{MAX_FRAMES - 1} frames; "
                 f"{s['skipped']} skipped"]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def _frames_ok(n: int) -> bool:
    return MIN_FRAMES <= n < MAX_FRAMES


class _Skip(Exception):
    """A clip the reader leaves out: the offending file and why."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def _read_clip(root: Path, name: str):
    """(motion (T, 263) float32, captions) of one clip, or _Skip naming the bad file."""
    path = root / FEATURES_DIR / f"{name}.npy"
    if not path.is_file():
        raise _Skip(path, "file not found")
    try:
        motion = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise _Skip(path, f"unreadable ({e})") from None
    problem = _features_problem(motion)
    if problem:
        raise _Skip(path, problem)
    texts = root / TEXTS_DIR / f"{name}.txt"
    if not texts.is_file():
        raise _Skip(texts, "file not found")
    try:
        captions = read_captions(texts)
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise _Skip(texts, str(e).removeprefix(f"{texts}, ")) from None
    if not captions:
        raise _Skip(texts, "no captions")
    return motion.astype(np.float32, copy=False), captions


def read_split(root, split: str, mean: np.ndarray | None = None, std: np.ndarray | None = None,
               progress: bool = True) -> SplitData:
    """Read split `split` (train/val/test) of the layout folder `root` into items.

    As in the reference loader: a clip whose whole motion is outside 40..199 frames is dropped
    together with all its captions (the length check comes first); whole-clip captions (0.0#0.0)
    share one item holding the whole motion; each timed caption makes its own item of frames
    [int(start * 20), int(end * 20)), kept only if that is 40..199 frames long. Missing or
    malformed files, wrong shapes and NaN features skip the clip with (path, reason) recorded.
    mean/std default to the folder's Mean.npy/Std.npy; pass both to normalise with another
    corpus's statistics (fine-tuning on FMS uses the pretraining corpus's, see `read_mean_std`).
    """
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"split file {split_file} not found")
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std, or neither to use the folder's own")
    if mean is None:
        mean, std = read_mean_std(root)
    else:
        mean, std = _check_mean_std(mean, std, where="the given mean/std")
    names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    items, skipped, filtered, seen = [], [], [], set()
    for name in tqdm(names, desc=f"reading {split}", disable=not progress):
        if name in seen:
            skipped.append((str(split_file), f"{name} listed more than once"))
            continue
        seen.add(name)
        try:
            motion, captions = _read_clip(root, name)
        except _Skip as e:
            skipped.append((e.path, e.reason))
            continue
        features_path = str(root / FEATURES_DIR / f"{name}.npy")
        if not _frames_ok(len(motion)):
            filtered.append((features_path, f"{len(motion)} frames"))
            continue
        whole = [c for c in captions if c.whole_clip]
        if whole:
            items.append(MotionItem(name, motion, whole))
        for c in captions:
            if c.whole_clip:
                continue
            a, b = int(c.start * FPS), int(c.end * FPS)
            sub = motion[a:b]
            if _frames_ok(len(sub)):
                items.append(MotionItem(name, sub, [c], (a, b)))
            else:
                filtered.append((f"{features_path}[{a}:{b}]", f"{len(sub)} frames"))
    return SplitData(root, split, items, mean, std, len(names), skipped, filtered)


def split_joints(root, split: str) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """Joints (T_i, 22, 3) float64 of every clip of split `split` in the layout folder `root`
    (`new_joints/`), for measures on joints; unreadable or malformed files, clips shorter than
    the 4 frames a third difference needs and non-finite ones are skipped as (path, reason)."""
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"split file {split_file} not found")
    joints, skipped = [], []
    for name in split_file.read_text().split():
        path = root / JOINTS_DIR / f"{name}.npy"
        try:
            j = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            skipped.append((str(path), f"unreadable ({e})"))
            continue
        if j.ndim != 3 or j.shape[1:] != (N_JOINTS, 3) or len(j) < 4:
            skipped.append((str(path), f"shape {j.shape}, expected (T >= 4, {N_JOINTS}, 3)"))
        elif not np.isfinite(j).all():
            skipped.append((str(path), "NaN or infinite values"))
        else:
            joints.append(j.astype(np.float64))
    return joints, skipped


def crop_length(n_frames: int, rng: np.random.Generator, unit: int = UNIT_LENGTH,
                max_len: int = MAX_LEN) -> int:
    """Training length of an n_frames motion, as the reference draws it: rounded down to a
    multiple of `unit`, and one unit shorter still with probability 1/3 (its coin over
    'single', 'single', 'double'), so that the model also sees lengths a unit shorter than the
    clip. Capped at the largest multiple of `unit` that fits in max_len."""
    if n_frames < 2 * unit:
        raise ValueError(f"a motion of {n_frames} frames is too short to crop in units of {unit}")
    units = n_frames // unit - (rng.random() < 1 / 3)
    return min(units * unit, max_len // unit * unit)


class MotionDataset(Dataset):
    """Training view of a `SplitData`: each access picks one of the item's captions, a length
    (`crop_length`) and a random window of that length, normalises it with (x - mean) / std and
    pads it with zeros to max_len frames.

    The random choices come from one np.random.Generator seeded by `seed`, so a run that reads
    the items in the same order gets the same captions and crops. With DataLoader workers each
    worker would copy that generator (repeating its draws); use num_workers=0, which the CPU
    runs of this project do anyway.
    """

    def __init__(self, data: SplitData, seed: int = 0, max_len: int = MAX_LEN,
                 unit_length: int = UNIT_LENGTH):
        if max_len < unit_length:
            raise ValueError(f"max_len {max_len} is shorter than one unit of {unit_length} frames")
        self.data, self.max_len, self.unit_length = data, max_len, unit_length
        self.mean, self.std = data.mean, data.std
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.data.items)

    def __getitem__(self, index: int) -> dict:
        return self.draw(index, self.rng)

    def draw(self, index: int, rng: np.random.Generator) -> dict:
        """Item `index` with its caption and crop drawn from `rng` (the training loop passes a
        generator seeded per step, so that batches do not depend on what was read before)."""
        item = self.data.items[index]
        caption = item.captions[rng.integers(len(item.captions))]
        length = crop_length(len(item.motion), rng, self.unit_length, self.max_len)
        start = rng.integers(len(item.motion) - length + 1)
        motion = np.zeros((self.max_len, N_FEATURES), dtype=np.float32)
        motion[:length] = (item.motion[start:start + length] - self.mean) / self.std
        return {"motion": torch.from_numpy(motion), "length": int(length),
                "caption": caption.text, "tokens": list(caption.tokens)}
