"""Reading the FMS dataset (Xing et al. 2022) exactly as it is published.

The dataset holds one Azure Kinect body-tracking JSON file per episode and camera
(`Skeleton data/Front/front_s01_m01_20210522141451_e1.json`, ...) and one `experts_score.json`
with three expert grades per episode. This module turns a file into a `Recording` (joints in
millimetres in the depth camera's frame, +X right, +Y down, +Z away from the camera, with a
per-frame validity mask), consolidates the expert grades into one grade per episode
(`ScoreTable`), and pairs the two in `FMSDataset`. Anything that cannot be used is either a
`ValueError`/`FileNotFoundError` naming the file and the problem (single-file functions), or a
counted, reported skip (the dataset, the score table). Nothing here changes coordinates: the
alignment to the HumanML3D frame (undoing the 6 degree camera tilt, Y up, metres) is
`fmsnb.align`'s job.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Movement:
    """One of the 15 recorded movements: its FMS test, its variant and its left/right mirror."""
    code: str     # "m01"
    test: str     # one of TESTS
    variant: str  # e.g. "heels on the floor"
    mirror: str   # code of the same movement with left and right swapped (itself if symmetric)


GRADES = (1, 2, 3)      # the grades an expert gives an episode

TESTS = ("deep squat", "hurdle step", "in-line lunge", "shoulder mobility",
         "active straight leg raise", "trunk stability push-up", "rotary stability")

MOVEMENTS: dict[str, Movement] = {m.code: m for m in (
    Movement("m01", "deep squat", "heels on the floor", "m01"),
    Movement("m02", "deep squat", "heels on a 2-inch board", "m02"),
    Movement("m03", "hurdle step", "left leg up", "m04"),
    Movement("m04", "hurdle step", "right leg up", "m03"),
    Movement("m05", "in-line lunge", "left leg in front", "m06"),
    Movement("m06", "in-line lunge", "right leg in front", "m05"),
    Movement("m07", "shoulder mobility", "left arm up", "m08"),
    Movement("m08", "shoulder mobility", "right arm up", "m07"),
    Movement("m09", "active straight leg raise", "left leg up", "m10"),
    Movement("m10", "active straight leg raise", "right leg up", "m09"),
    Movement("m11", "trunk stability push-up", "support on the ground with both hands", "m11"),
    Movement("m12", "rotary stability", "left arm and left leg up", "m13"),
    Movement("m13", "rotary stability", "right arm and right leg up", "m12"),
    Movement("m14", "rotary stability", "left arm and right leg up", "m15"),
    Movement("m15", "rotary stability", "right arm and left leg up", "m14"),
)}

VIEWS = ("front", "side")
VIEW_FOLDERS = {"front": "Front", "side": "Side"}
FPS = 30

# Azure Kinect Body Tracking joint order (k4abt_joint_id_t) and the SDK's joint hierarchy.
KINECT_JOINTS = (
    "PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK",
    "CLAVICLE_LEFT", "SHOULDER_LEFT", "ELBOW_LEFT", "WRIST_LEFT", "HAND_LEFT", "HANDTIP_LEFT",
    "THUMB_LEFT",
    "CLAVICLE_RIGHT", "SHOULDER_RIGHT", "ELBOW_RIGHT", "WRIST_RIGHT", "HAND_RIGHT",
    "HANDTIP_RIGHT", "THUMB_RIGHT",
    "HIP_LEFT", "KNEE_LEFT", "ANKLE_LEFT", "FOOT_LEFT",
    "HIP_RIGHT", "KNEE_RIGHT", "ANKLE_RIGHT", "FOOT_RIGHT",
    "HEAD", "NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT",
)
KINECT_INDEX = {name: i for i, name in enumerate(KINECT_JOINTS)}
# The face joints (27..31) all hang off HEAD in the SDK's table; kept in this one place in case
# a data source attaches the eyes and ears to the nose instead.
KINECT_PARENTS = (
    -1, 0, 1, 2, 2, 4, 5, 6, 7, 8, 7, 2, 11, 12, 13, 14, 15, 14,
    0, 18, 19, 20, 0, 22, 23, 24, 3, 26, 26, 26, 26, 26,
)
# Joints that must be tracked for a frame to be usable: the body without hands, thumbs and face.
ESSENTIAL_JOINTS = tuple(KINECT_INDEX[n] for n in (
    "PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK", "HEAD",
    "SHOULDER_LEFT", "SHOULDER_RIGHT", "ELBOW_LEFT", "ELBOW_RIGHT", "WRIST_LEFT", "WRIST_RIGHT",
    "HIP_LEFT", "HIP_RIGHT", "KNEE_LEFT", "KNEE_RIGHT", "ANKLE_LEFT", "ANKLE_RIGHT",
    "FOOT_LEFT", "FOOT_RIGHT",
))
# Azure Kinect joint confidence levels: 0 none (out of range), 1 low (predicted, e.g. occluded),
# 2 medium (observed), 3 high (not produced by the current SDK).
CONFIDENCE_NONE, CONFIDENCE_LOW, CONFIDENCE_MEDIUM, CONFIDENCE_HIGH = 0, 1, 2, 3

# `{view}_{sNN}_{mNN}_{YYYYMMDDhhmmss}_{eN}.json`, e.g. front_s01_m01_20210522141451_e1.json.
FILE_NAME = re.compile(r"(front|side)_(s\d{2})_(m\d{2})_(\d{14})_e(\d+)\.json")
EPISODE_KEY = re.compile(r"e(\d+)")
SUBJECT_KEY = re.compile(r"s\d{2}")


@dataclass
class Recording:
    """One episode seen by one camera. T frames; joints in mm in that camera's frame."""
    path: Path
    view: str                 # "front" or "side"
    subject: str              # "s01"
    movement: str             # "m01"
    episode: int              # 1..3
    acquired: str             # acquisition time from the file name, YYYYMMDDhhmmss
    timestamps: np.ndarray    # (T,) float64 seconds (device time, timestamp_usec / 1e6)
    source_frames: np.ndarray  # (T,) int64, `original_frmae_num`: index in the raw recording
    joints: np.ndarray        # (T, 32, 3) float32 mm; NaN where a frame has no (usable) body
    confidence: np.ndarray    # (T, 32) int8 in 0..3; 0 where a frame has no body
    valid: np.ndarray         # (T,) bool: a body, finite joints, essential joints confident

    @property
    def key(self) -> tuple[str, str, int]:
        return self.subject, self.movement, self.episode


@dataclass(frozen=True)
class FileName:
    view: str
    subject: str
    movement: str
    acquired: str
    episode: int


def parse_file_name(path: str | Path) -> FileName:
    """Split a published skeleton file name into its fields; ValueError naming the file if bad."""
    path = Path(path)
    match = FILE_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path}: bad file name, expected "
                         "{front|side}_sNN_mNN_YYYYMMDDhhmmss_eN.json")
    view, subject, movement, acquired, episode = match.groups()
    if movement not in MOVEMENTS:
        raise ValueError(f"{path}: unknown movement code {movement!r} (expected m01..m15)")
    return FileName(view, subject, movement, acquired, int(episode))


def _read_json(path: Path, what: str):
    """The parsed contents of JSON file `path`; FileNotFoundError or ValueError naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file (truncated?): {err}") from None


def _require(mapping, keys: tuple[str, ...], where: str, path: Path) -> None:
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: {where} is not a JSON object")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{path}: {where} misses key(s) {missing}")


def _body_arrays(bodies: list[dict], frame_ids: list[int], path: Path):
    """Stack the first bodies' positions (N, 32, 3) and confidences (N, 32), checking shapes."""
    for body, t in zip(bodies, frame_ids):
        _require(body, ("joint_positions", "confidence_level"), f"frame {t} body 0", path)
    try:
        positions = np.array([b["joint_positions"] for b in bodies], dtype=np.float64)
        confidence = np.array([b["confidence_level"] for b in bodies], dtype=np.float64)
    except (ValueError, TypeError):
        positions = confidence = None  # ragged or non-numeric: find the culprit below
    if positions is None or positions.shape[1:] != (32, 3) or confidence.shape[1:] != (32,):
        for body, t in zip(bodies, frame_ids):
            joints, levels = body["joint_positions"], body["confidence_level"]
            if not isinstance(joints, list) or len(joints) != 32:
                n = len(joints) if isinstance(joints, list) else type(joints).__name__
                raise ValueError(f"{path}: frame {t}: body has {n} joints, expected 32")
            for j, p in enumerate(joints):
                if not isinstance(p, list) or len(p) != 3:
                    raise ValueError(f"{path}: frame {t} joint {j}: expected 3 coordinates, "
                                     f"got {p!r}")
            if not isinstance(levels, list) or len(levels) != 32:
                raise ValueError(f"{path}: frame {t}: confidence_level must hold 32 values")
        raise ValueError(f"{path}: non-numeric joint positions or confidence levels")
    # numpy reads "12.5" as 12.5: coordinates written as text are a fault of the file
    for body, t in zip(bodies, frame_ids):
        for j, p in enumerate(body["joint_positions"]):
            if any(isinstance(v, (str, bool)) for v in p):
                raise ValueError(f"{path}: frame {t} joint {j}: coordinates must be numbers, "
                                 f"got {p!r}")
    # JSON null and NaN both arrive as NaN here; such frames are marked invalid, never dropped.
    bad = ~np.isin(confidence, (0, 1, 2, 3))
    if bad.any():
        t = frame_ids[int(np.argwhere(bad)[0, 0])]
        raise ValueError(f"{path}: frame {t}: confidence_level values must be integers 0..3")
    return positions, confidence.astype(np.int8)


def read_recording(path: str | Path, min_confidence: int = CONFIDENCE_LOW) -> Recording:
    """Read one published skeleton file into a `Recording`.

    A frame is valid when it has a body (`bodies[0]` is used), all 32 joints have finite
    coordinates, and every joint of `ESSENTIAL_JOINTS` has `confidence_level >= min_confidence`
    (default 1 = low: predicted joints count, undetected ones do not). Invalid frames keep their
    place in time (T is the file's frame count); frames without a body have NaN joints and
    confidence 0. A body with NaN or null coordinates (partially or wholly) is kept as read,
    NaN where the file has none, and its frame is invalid: a valid frame never holds NaN.
    Raises FileNotFoundError, or ValueError naming the file and the problem, for:
    a bad file name or unknown movement, truncated/non-JSON content, missing keys,
    `total_frames` or `original_frmae_num` disagreeing with the frame list, a body without 32
    joints of 3 coordinates or with confidence levels outside 0..3, no body in any frame, and no
    valid frame at all.
    """
    path = Path(path)
    name = parse_file_name(path)
    if not 0 <= min_confidence <= 3:
        raise ValueError(f"min_confidence must be in 0..3, got {min_confidence}")
    data = _read_json(path, "file")
    _require(data, ("total_frames", "frames", "original_frmae_num"), "top level", path)
    frames = data["frames"]
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path}: 'frames' must be a non-empty list")
    if data["total_frames"] != len(frames):
        raise ValueError(f"{path}: total_frames is {data['total_frames']} "
                         f"but the file holds {len(frames)} frames")
    source = data["original_frmae_num"]
    if not isinstance(source, list) or len(source) != len(frames):
        raise ValueError(f"{path}: original_frmae_num must list one source index per frame "
                         f"({len(frames)} frames)")
    for t, frame in enumerate(frames):
        _require(frame, ("timestamp_usec", "bodies"), f"frame {t}", path)
        if not isinstance(frame["bodies"], list):
            raise ValueError(f"{path}: frame {t}: 'bodies' must be a list of bodies, got "
                             f"{type(frame['bodies']).__name__}")
    with_body = [t for t, frame in enumerate(frames) if frame["bodies"]]
    if not with_body:
        raise ValueError(f"{path}: no frame has a body (all {len(frames)} frames empty)")

    positions, levels = _body_arrays([frames[t]["bodies"][0] for t in with_body], with_body, path)
    T = len(frames)
    joints = np.full((T, 32, 3), np.nan, dtype=np.float32)
    confidence = np.zeros((T, 32), dtype=np.int8)
    joints[with_body] = positions
    confidence[with_body] = levels
    has_body = np.zeros(T, dtype=bool)
    has_body[with_body] = True
    finite = np.isfinite(joints).all(axis=(1, 2))
    confident = (confidence[:, ESSENTIAL_JOINTS] >= min_confidence).all(axis=1)
    valid = has_body & finite & confident
    if not valid.any():
        raise ValueError(f"{path}: no valid frame ({len(with_body)} of {T} frames have a body, "
                         f"none with finite joints and essential joints at confidence "
                         f">= {min_confidence})")
    try:
        timestamps = np.array([f["timestamp_usec"] for f in frames], dtype=np.float64) / 1e6
    except (TypeError, ValueError):
        raise ValueError(f"{path}: timestamp_usec must be numbers") from None
    return Recording(
        path=path, view=name.view, subject=name.subject, movement=name.movement,
        episode=name.episode, acquired=name.acquired, timestamps=timestamps,
        source_frames=np.asarray(source, dtype=np.int64),
        joints=joints, confidence=confidence, valid=valid)


POLICIES = ("majority", "mean")


@dataclass
class ScoreTable:
    """Expert grades per episode, keyed by (subject, movement, episode), e.g. ("s01", "m01", 1).

    `raw` holds the three experts' grades of every well-formed entry; `grades` the consolidated
    grade under `policy`. "majority": the grade at least two experts gave; episodes where all
    three disagree are left out of `grades` and listed in `dropped`. "mean": the mean of the
    three rounded half up (with three integer grades the mean is a multiple of 1/3, so no tie
    ever occurs; 1.33 -> 1, 1.67 -> 2). Malformed entries are in `skipped` as (where, reason).
    """
    path: Path
    policy: str
    raw: dict[tuple[str, str, int], tuple[int, int, int]]
    grades: dict[tuple[str, str, int], int]
    dropped: list[tuple[str, str, int]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def grade(self, subject: str, movement: str, episode: int) -> int | None:
        return self.grades.get((subject, movement, episode))

    def counts(self) -> dict[int, int]:
        """Number of episodes per consolidated grade, {1: n1, 2: n2, 3: n3}."""
        c = Counter(self.grades.values())
        return {g: c.get(g, 0) for g in GRADES}


def consolidate(raw: np.ndarray, policy: str) -> np.ndarray:
    """One grade per row of `raw` (N, 3) ints in 1..3: (N,) ints, 0 where majority finds none."""
    raw = np.asarray(raw, dtype=np.int64).reshape(-1, 3)
    if policy == "mean":
        return np.floor(raw.mean(axis=1) + 0.5).astype(np.int64)
    if policy == "majority":
        a, b, c = raw.T
        return np.where((a == b) | (a == c), a, np.where(b == c, b, 0))
    raise ValueError(f"unknown grade policy {policy!r}; expected one of {POLICIES}")


def _check_grades(value) -> str | None:
    """Why `value` is not three integer grades in 1..3, or None when it is."""
    if not isinstance(value, list) or len(value) != 3:
        return f"expected a list of three grades, got {value!r}"
    if not all(isinstance(g, int) and not isinstance(g, bool) for g in value):
        return f"grades must be integers, got {value!r}"
    if not all(1 <= g <= 3 for g in value):
        return f"grades must be in 1..3, got {value!r}"
    return None


def read_expert_scores(path: str | Path, policy: str = "majority") -> ScoreTable:
    """Read `experts_score.json` ({"s01": {"m01": {"e1": [a, b, c], ...}}}) into a ScoreTable.

    A file that is missing, not JSON or not a JSON object is an error naming the file; single
    malformed entries (unknown subject/movement/episode keys, not three integer grades, a grade
    outside 1..3) are skipped and listed with the subject, movement and episode they belong to.
    """
    path = Path(path)
    if policy not in POLICIES:
        raise ValueError(f"unknown grade policy {policy!r}; expected one of {POLICIES}")
    data = _read_json(path, "score file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of subjects at the top level")

    raw, skipped = {}, []
    for subject, movements in data.items():
        if not SUBJECT_KEY.fullmatch(subject) or not isinstance(movements, dict):
            skipped.append((f"{subject}", "expected a subject key sNN holding movements"))
            continue
        for movement, episodes in movements.items():
            where = f"{subject} {movement}"
            if movement not in MOVEMENTS or not isinstance(episodes, dict):
                skipped.append((where, "unknown movement code or not a mapping of episodes"))
                continue
            for episode, value in episodes.items():
                match = EPISODE_KEY.fullmatch(episode)
                problem = _check_grades(value) if match else "episode key must be eN"
                if problem:
                    skipped.append((f"{where} {episode}", problem))
                else:
                    raw[(subject, movement, int(match.group(1)))] = tuple(value)

    keys = list(raw)
    grades = consolidate(np.array([raw[k] for k in keys]).reshape(-1, 3), policy)
    dropped = [k for k, g in zip(keys, grades) if g == 0]
    return ScoreTable(path=path, policy=policy, raw=raw,
                      grades={k: int(g) for k, g in zip(keys, grades) if g != 0},
                      dropped=dropped, skipped=skipped)


@dataclass
class Episode:
    """One graded episode with its recording from each requested view."""
    subject: str
    movement: str
    episode: int
    grade: int                           # consolidated grade, 1..3
    expert_grades: tuple[int, int, int]  # the three experts' raw grades
    recordings: dict[str, Recording]     # view -> Recording, in the dataset's `views` order

    @property
    def recording(self) -> Recording:
        """The recording of the first requested view."""
        return next(iter(self.recordings.values()))


class FMSDataset:
    """The FMS dataset in its published layout, read eagerly into graded `Episode`s.

    root/Skeleton data/Front, root/Skeleton data/Side and root/experts_score.json are the
    defaults; each can be given explicitly (`front_dir`, `side_dir`, `scores`) for renamed
    copies. Every skeleton file of the requested `views` is read at construction (a progress bar
    shows it), so `skipped` is complete once the object exists: it lists (path, reason) for
    unreadable files and bad file names, duplicate recordings of an episode, recordings without
    a grade, grades the policy dropped, malformed score entries (path = the score file) and
    episodes missing one of the requested views. Episodes are sorted by subject, movement and
    episode.
    """

    def __init__(self, root: str | Path | None = None, front_dir: str | Path | None = None,
                 side_dir: str | Path | None = None, scores: str | Path | None = None,
                 policy: str = "majority", views: tuple[str, ...] = ("front",),
                 min_confidence: int = CONFIDENCE_LOW, progress: bool = True):
        views = tuple(views)
        if not views or any(v not in VIEWS for v in views) or len(set(views)) != len(views):
            raise ValueError(f"views must be distinct names from {VIEWS}, got {views}")
        if root is None and (scores is None or any(
                (front_dir, side_dir)[VIEWS.index(v)] is None for v in views)):
            raise ValueError("give `root`, or the score file and a folder for every view")
        root = Path(root) if root is not None else None
        folders = {"front": front_dir, "side": side_dir}
        self.dirs = {v: Path(folders[v]) if folders[v] is not None
                     else root / "Skeleton data" / VIEW_FOLDERS[v] for v in views}
        for view, folder in self.dirs.items():
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: no {view} skeleton folder")
        self.views = views
        self.scores = read_expert_scores(scores if scores is not None
                                         else root / "experts_score.json", policy)
        self.skipped: list[tuple[Path, str]] = [
            (self.scores.path, f"{where}: {reason}") for where, reason in self.scores.skipped]
        self.episodes = self._read(min_confidence, progress)

    def _read(self, min_confidence: int, progress: bool) -> list[Episode]:
        files = [p for v in self.views for p in sorted(self.dirs[v].glob("*.json"))]
        found: dict[tuple[str, str, int], dict[str, Recording]] = {}
        for path in tqdm(files, desc="reading FMS skeletons", disable=not progress):
            try:
                rec = read_recording(path, min_confidence)
            except ValueError as err:
                self.skipped.append((path, str(err)))
                continue
            views = found.get(rec.key, {})
            if rec.view not in self.dirs:
                self.skipped.append((path, f"a {rec.view} file among the {self.views} files"))
            elif rec.view in views:
                self.skipped.append((path, f"duplicate of {views[rec.view].path.name}"))
            else:
                found.setdefault(rec.key, {})[rec.view] = rec

        dropped = set(self.scores.dropped)
        episodes = []
        for key in sorted(found):
            recordings = found[key]
            first = next(iter(recordings.values())).path
            if key in dropped:
                self.skipped.append((first, f"experts disagree three ways {self.scores.raw[key]} "
                                            f"under the {self.scores.policy} policy"))
            elif key not in self.scores.grades:
                s, m, e = key
                self.skipped.append((first, f"no expert grade for {s} {m} e{e} in "
                                            f"{self.scores.path.name}"))
            elif len(recordings) < len(self.views):
                missing = [v for v in self.views if v not in recordings]
                self.skipped.append((first, f"no {'/'.join(missing)} recording of this episode"))
            else:
                episodes.append(Episode(*key, grade=self.scores.grades[key],
                                        expert_grades=self.scores.raw[key],
                                        recordings={v: recordings[v] for v in self.views}))
        return episodes

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> Episode:
        return self.episodes[i]

    def __iter__(self):
        return iter(self.episodes)

    def counts(self) -> dict[str, dict]:
        """Episode counts: {"movement": {m: n}, "grade": {g: n}, "movement_grade": {m: {g: n}}}."""
        per = {m: {g: 0 for g in GRADES} for m in MOVEMENTS}
        for ep in self.episodes:
            per[ep.movement][ep.grade] += 1
        return {"movement": {m: sum(c.values()) for m, c in per.items()},
                "grade": {g: sum(c[g] for c in per.values()) for g in GRADES},
                "movement_grade": per}

    def __repr__(self) -> str:
        return (f"FMSDataset({len(self)} episodes, views={self.views}, "
                f"policy={self.scores.policy!r}, {len(self.skipped)} skipped)")


def skip_counts(skipped, first: int = 3) -> list[str]:
    """One line per kind of reason in `skipped` (path, reason) pairs: how many, the first
    reason in full and the first files. Reasons that differ only in numbers (frame, subject,
    episode, line) are one kind, so 40 ungraded recordings make one line, not 40."""
    kinds: dict[str, list[tuple[str, str]]] = {}
    for path, reason in skipped:
        reason = reason.removeprefix(f"{path}: ")
        kinds.setdefault(re.sub(r"\d+", "N", reason), []).append((Path(path).name, reason))
    lines = []
    for entries in sorted(kinds.values(), key=len, reverse=True):
        names = ", ".join(name for name, _ in entries[:first])
        more = f" and {len(entries) - first} more" if len(entries) > first else ""
        lines.append(f"{len(entries)} x {entries[0][1]} ({names}{more})")
    return lines
