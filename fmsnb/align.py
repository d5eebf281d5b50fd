"""Aligning FMS recordings with HumanML3D (paper 4.2) and writing them in the HumanML3D layout.

An FMS recording holds the 32 Azure Kinect joints in millimetres in the depth camera's frame
(+X right, +Y down, +Z away from the camera, pitched 6 degrees down), at 30 fps with gaps where
tracking failed; HumanML3D wants 22 SMPL joints in metres, Y up, at 20 fps, as 263 features per
frame. This module bridges the two: one proper rotation (`camera_rotation`) undoes the tilt and
turns the camera frame into a Y-up frame in which a subject facing the camera faces +Z with its
left at +X, as in HumanML3D; `kinect_to_humanml` maps 20 joints directly and places spine2 and
spine3 on the navel -> chest line by the two datasets' mean spine distances (`SpineDistances`);
`Alignment` shifts each camera's mean navel onto the HumanML3D mean spine1; `find_pieces` and
`resample` bridge short tracking gaps, split at long ones and resample to 20 fps on the
recording's own timestamps; and `write_fms_corpus` runs it all, then `process_joints`, over an
`FMSDataset` and writes the HumanML3D folder layout with plain captions, subject-disjoint splits
and a metadata file from which the grade-conditioning styles of `captions.py` are applied at
load time. `fit_floor` measures how level the floor comes out, the check of the tilt correction.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm.auto import tqdm

from fmsnb import dataset
from fmsnb.corpus import FEATURES_DIR, JOINTS_DIR, META_FILE, TEXTS_DIR, read_fms_meta
from fmsnb.captions import plain_captions
from fmsnb.fms import GRADES, KINECT_INDEX, MOVEMENTS, FMSDataset, Recording, skip_counts
from fmsnb.humanml3d import (FPS, JOINT_NAMES, mirror_joints, process_joints, recover_joints,
                             target_offsets)

TILT_DEG = 6.0            # downward tilt of the Kinect depth camera (Xing et al. 2022)
MM = 1e-3                 # metres per millimetre
# Longest stretch between two valid frames that linear interpolation may bridge; longer gaps
# split the recording. 0.25 s is up to 6 missing frames at 30 fps, short enough that a
# movement of a few seconds is still well described by a straight line across it.
MAX_GAP_S = 0.25
# A piece must give at least as many feature frames as the HumanML3D reader keeps (40 feature
# rows = 41 joint frames = 2 s at 20 fps); shorter pieces are fragments of a movement that the
# reader would drop anyway, so they are dropped here and counted.
MIN_FEATURE_FRAMES = dataset.MIN_FRAMES
MIN_JOINT_FRAMES = MIN_FEATURE_FRAMES + 1
# HumanML3D mean spine1 position (metres): the mean over the 170 frames of the released clip
# new_joints/012314.npy (the only processed HumanML3D clip at hand, in the frame its features
# describe: on the floor, frame 0's root at the XZ origin, facing +Z).
HUMANML3D_SPINE1_MEAN = np.array([0.74961663, 1.00355696, 0.10817991])

# HumanML3D joint <- the Kinect joint at the same place on the body.
DIRECT = {
    "pelvis": "PELVIS", "l_hip": "HIP_LEFT", "r_hip": "HIP_RIGHT", "spine1": "SPINE_NAVEL",
    "l_knee": "KNEE_LEFT", "r_knee": "KNEE_RIGHT", "l_ankle": "ANKLE_LEFT",
    "r_ankle": "ANKLE_RIGHT", "l_foot": "FOOT_LEFT", "r_foot": "FOOT_RIGHT", "neck": "NECK",
    "l_collar": "CLAVICLE_LEFT", "r_collar": "CLAVICLE_RIGHT", "head": "HEAD",
    "l_shoulder": "SHOULDER_LEFT", "r_shoulder": "SHOULDER_RIGHT", "l_elbow": "ELBOW_LEFT",
    "r_elbow": "ELBOW_RIGHT", "l_wrist": "WRIST_LEFT", "r_wrist": "WRIST_RIGHT",
}
DIRECT_HML = np.array([JOINT_NAMES.index(h) for h in DIRECT])
DIRECT_KINECT = np.array([KINECT_INDEX[k] for k in DIRECT.values()])
SPINE1, SPINE2, SPINE3, NECK = (JOINT_NAMES.index(n) for n in ("spine1", "spine2", "spine3", "neck"))
NAVEL, CHEST, K_NECK = KINECT_INDEX["SPINE_NAVEL"], KINECT_INDEX["SPINE_CHEST"], KINECT_INDEX["NECK"]
# Kinect joints with no HumanML3D counterpart (SPINE_CHEST is used, for the spine's direction).
DROPPED = tuple(n for n in KINECT_INDEX if n not in DIRECT.values() and n != "SPINE_CHEST")


# ---------------------------------------------------------------- space

def camera_rotation(tilt_deg: float = TILT_DEG) -> np.ndarray:
    """Rotation matrix (3, 3) from the depth camera frame to the aligned world frame.

    Camera: +X right, +Y down, +Z along the optical axis, which points `tilt_deg` below the
    horizontal. World: +X the camera's right, +Y up, +Z horizontal towards the camera. The
    columns are the camera axes written in world coordinates; the determinant is +1 (a
    rotation, no reflection), so a subject facing the camera faces +Z with its left at +X.
    """
    s, c = np.sin(np.radians(tilt_deg)), np.cos(np.radians(tilt_deg))
    return np.array([[1.0, 0.0, 0.0],
                     [0.0, -c, -s],
                     [0.0, s, -c]])


def camera_to_world(joints_mm: np.ndarray, tilt_deg: float = TILT_DEG) -> np.ndarray:
    """Kinect positions (..., 3) in mm in the camera frame -> metres in the Y-up world frame."""
    return np.asarray(joints_mm, dtype=np.float64) @ camera_rotation(tilt_deg).T * MM


# ---------------------------------------------------------------- skeleton

@dataclass(frozen=True)
class SpineDistances:
    """Mean distances along the spine (metres) and the placement of spine2/spine3 they give.

    HumanML3D's spine1-spine2-spine3 chain spans the same stretch of the back as the Kinect
    navel-chest segment (paper 4.2). So spine3 goes at the FMS mean navel-chest distance from
    the navel, and spine2 in between at the HumanML3D proportion
    spine1-spine2 / (spine1-spine2 + spine2-spine3), both along the frame's own unit vector
    navel -> chest. spine3-neck and chest-neck are reported for comparison only.
    """
    hml_spine1_spine2: float
    hml_spine2_spine3: float
    hml_spine3_neck: float
    fms_navel_chest: float
    fms_chest_neck: float
    fms_frames: int           # valid frames the FMS means are taken over

    @property
    def scale(self) -> float:
        """FMS navel-chest over HumanML3D spine1-spine3: the size ratio of the two backs."""
        return self.fms_navel_chest / (self.hml_spine1_spine2 + self.hml_spine2_spine3)

    @property
    def spine2_distance(self) -> float:
        """Distance of spine2 from the navel along navel -> chest."""
        return self.scale * self.hml_spine1_spine2

    @property
    def spine3_distance(self) -> float:
        """Distance of spine3 from the navel along navel -> chest (= the FMS navel-chest mean)."""
        return self.scale * (self.hml_spine1_spine2 + self.hml_spine2_spine3)


def humanml3d_spine() -> tuple[float, float, float]:
    """Bone lengths spine1-spine2, spine2-spine3, spine3-neck of the HumanML3D target skeleton."""
    lengths = np.linalg.norm(target_offsets(), axis=-1)
    return float(lengths[SPINE2]), float(lengths[SPINE3]), float(lengths[NECK])


def measure_spine(kinect_joints: Iterable[np.ndarray]) -> SpineDistances:
    """SpineDistances from FMS joints: each item (T, 32, 3) in millimetres, valid frames only."""
    n, navel_chest, chest_neck = 0, 0.0, 0.0
    for joints in kinect_joints:
        joints = np.asarray(joints, dtype=np.float64)
        navel_chest += np.linalg.norm(joints[:, CHEST] - joints[:, NAVEL], axis=-1).sum()
        chest_neck += np.linalg.norm(joints[:, K_NECK] - joints[:, CHEST], axis=-1).sum()
        n += len(joints)
    if n == 0:
        raise ValueError("measure_spine needs at least one valid FMS frame")
    return SpineDistances(*humanml3d_spine(), fms_navel_chest=navel_chest / n * MM,
                          fms_chest_neck=chest_neck / n * MM, fms_frames=n)


def kinect_to_humanml(joints: np.ndarray, spine: SpineDistances) -> np.ndarray:
    """Kinect joints (T, 32, 3) in metres (any frame) -> HumanML3D joints (T, 22, 3)."""
    joints = np.asarray(joints, dtype=np.float64)
    out = np.empty(joints.shape[:-2] + (len(JOINT_NAMES), 3))
    out[..., DIRECT_HML, :] = joints[..., DIRECT_KINECT, :]
    navel = joints[..., NAVEL, :]
    up = joints[..., CHEST, :] - navel
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    out[..., SPINE2, :] = navel + spine.spine2_distance * up
    out[..., SPINE3, :] = navel + spine.spine3_distance * up
    return out


# ---------------------------------------------------------------- floor (checks the tilt)

@dataclass(frozen=True)
class FloorFit:
    """The plane y = slope_x * x + slope_z * z + height fitted to floor contact points."""
    height: float             # metres, at x = z = 0
    slope_x: float
    slope_z: float
    rms: float                # residual height (metres) of the points about the plane
    n_points: int

    @property
    def tilt_deg(self) -> float:
        """Angle between the fitted floor and the horizontal (0 for a level floor)."""
        return float(np.degrees(np.arctan(np.hypot(self.slope_x, self.slope_z))))


FOOT_STILL = 0.005        # metres per 20 fps frame (0.1 m/s): a toe this slow is planted
FOOT_LOW = 0.03           # metres above the clip's lowest toe point that still count as floor


def floor_points(joints: np.ndarray) -> np.ndarray:
    """Planted toe positions (N, 3) of a clip, joints (T, 22, 3) at 20 fps: the l_foot/r_foot
    points that move less than FOOT_STILL to the next frame and lie within FOOT_LOW of the
    clip's lowest toe point. Meant for standing movements, where a planted toe is on the floor."""
    toes = np.asarray(joints)[:, [JOINT_NAMES.index("l_foot"), JOINT_NAMES.index("r_foot")]]
    still = np.linalg.norm(np.diff(toes, axis=0), axis=-1) < FOOT_STILL
    low = toes[:-1, :, 1] < toes[..., 1].min() + FOOT_LOW
    return toes[:-1][still & low]


def fit_floor(points: np.ndarray) -> FloorFit:
    """Least-squares floor plane through points (N, 3), N >= 3 not all on one line."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    design = np.column_stack([points[:, 0], points[:, 2], np.ones(len(points))])
    (a, b, c), _, rank, _ = np.linalg.lstsq(design, points[:, 1], rcond=None)
    if len(points) < 3 or rank < 3:
        raise ValueError(f"fitting a floor plane needs points spread in x and z; got "
                         f"{len(points)} point(s) of rank {rank}")
    residual = points[:, 1] - design @ [a, b, c]
    return FloorFit(float(c), float(a), float(b), float(np.sqrt((residual ** 2).mean())),
                    len(points))


# ---------------------------------------------------------------- fitted alignment

@dataclass
class Alignment:
    """What `fit_alignment` measured: the spine placement and, per camera view, the FMS mean
    navel position after the rotation, with the translation onto the HumanML3D mean spine1."""
    tilt_deg: float
    spine: SpineDistances
    fms_navel: dict[str, np.ndarray]            # view -> (3,) metres, rotated world frame
    hml_navel: np.ndarray = field(default_factory=lambda: HUMANML3D_SPINE1_MEAN.copy())

    def translation(self, view: str) -> np.ndarray:
        if view not in self.fms_navel:
            raise ValueError(f"no alignment for view {view!r}; fitted views: {list(self.fms_navel)}")
        return self.hml_navel - self.fms_navel[view]

    def to_dict(self) -> dict:
        """Plain numbers for JSON and printing."""
        return {"tilt_deg": self.tilt_deg,
                "spine": {**asdict(self.spine), "scale": self.spine.scale,
                          "spine2_distance": self.spine.spine2_distance,
                          "spine3_distance": self.spine.spine3_distance},
                "hml_navel": self.hml_navel.tolist(),
                "fms_navel": {v: p.tolist() for v, p in self.fms_navel.items()},
                "translation": {v: self.translation(v).tolist() for v in self.fms_navel}}


def fit_alignment(recordings: Iterable[Recording], tilt_deg: float = TILT_DEG) -> Alignment:
    """Measure the spine distances and each view's mean navel over the valid frames of all
    `recordings` (the paper's dataset-wide means; one uniform translation per camera)."""
    valid = [(rec.view, rec.joints[rec.valid]) for rec in recordings]
    spine = measure_spine(j for _, j in valid)
    navels: dict[str, list[np.ndarray]] = {}
    for view, joints in valid:
        navels.setdefault(view, []).append(camera_to_world(joints[:, NAVEL], tilt_deg))
    return Alignment(tilt_deg, spine, {v: np.concatenate(p).mean(axis=0) for v, p in navels.items()})


# ---------------------------------------------------------------- time

@dataclass
class Piece:
    """A stretch of one recording without long gaps: its valid frames' indices, and how many
    frames it bridges by interpolation in how many gaps."""
    frames: np.ndarray        # (N,) indices of the valid frames
    filled_frames: int
    filled_gaps: int


def find_pieces(timestamps: np.ndarray, valid: np.ndarray, max_gap: float = MAX_GAP_S,
                where: str = "recording") -> list[Piece]:
    """Split the valid frames of a recording (timestamps (T,) s, valid (T,) bool) where two
    consecutive valid frames lie more than `max_gap` seconds apart. Leading and trailing invalid
    frames fall outside every piece."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    index = np.flatnonzero(valid)
    steps = np.diff(timestamps[index])
    if (steps <= 0).any():
        raise ValueError(f"{where}: timestamps of valid frames must increase strictly")
    # Timestamps are whole microseconds; the tolerance keeps a gap of exactly max_gap bridgeable.
    cuts = np.flatnonzero(steps > max_gap + 1e-6) + 1
    pieces = []
    for frames in np.split(index, cuts):
        missing = np.diff(frames) - 1
        pieces.append(Piece(frames, int(missing.sum()), int((missing > 0).sum())))
    return pieces


def resample(timestamps: np.ndarray, values: np.ndarray, fps: float = FPS):
    """Linear interpolation of values (N, ...) sampled at increasing timestamps (N,) onto a
    uniform grid at `fps` starting at timestamps[0]: (times (M,), values (M, ...))."""
    t = np.asarray(timestamps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n_out = int(np.floor((t[-1] - t[0]) * fps + 1e-6)) + 1
    grid = t[0] + np.arange(n_out) / fps
    if len(t) == 1:
        return grid, values.copy()
    # Each grid time between samples i and i + 1 (the last interval includes its end).
    i = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    w = ((grid - t[i]) / (t[i + 1] - t[i])).reshape((-1,) + (1,) * (values.ndim - 1))
    return grid, (1.0 - w) * values[i] + w * values[i + 1]


@dataclass
class AlignedClip:
    """One usable piece of a recording in the HumanML3D frame at 20 fps."""
    joints: np.ndarray        # (T, 22, 3) metres, Y up, before `process_joints`
    start: float              # seconds from the recording's first frame
    end: float
    piece: int                # index of the piece within the recording
    filled_frames: int
    filled_gaps: int


@dataclass
class AlignedRecording:
    """The usable clips of a recording and what the time cleaning did to it."""
    clips: list[AlignedClip]
    frames: int               # frames in the file
    invalid_frames: int
    trimmed_frames: int       # invalid frames before the first / after the last valid one
    splits: int               # long gaps the recording was split at
    dropped_pieces: int       # pieces shorter than MIN_JOINT_FRAMES at 20 fps
    dropped_frames: int       # valid 30 fps frames in those pieces


def align_joints(kinect_mm: np.ndarray, view: str, alignment: Alignment) -> np.ndarray:
    """Kinect joints (T, 32, 3) in mm, camera frame -> HumanML3D joints (T, 22, 3), aligned."""
    world = camera_to_world(kinect_mm, alignment.tilt_deg)
    return kinect_to_humanml(world, alignment.spine) + alignment.translation(view)


def align_recording(rec: Recording, alignment: Alignment, max_gap: float = MAX_GAP_S,
                    min_frames: int = MIN_JOINT_FRAMES) -> AlignedRecording:
    """Clean, split and resample a recording and bring each piece into the HumanML3D frame."""
    pieces = find_pieces(rec.timestamps, rec.valid, max_gap, where=str(rec.path))
    index = np.flatnonzero(rec.valid)
    t0 = rec.timestamps[0]
    clips, dropped, dropped_frames = [], 0, 0
    for k, piece in enumerate(pieces):
        times, joints = resample(rec.timestamps[piece.frames], rec.joints[piece.frames])
        if len(times) < min_frames:
            dropped, dropped_frames = dropped + 1, dropped_frames + len(piece.frames)
            continue
        clips.append(AlignedClip(align_joints(joints, rec.view, alignment), float(times[0] - t0),
                                 float(times[-1] - t0), k, piece.filled_frames, piece.filled_gaps))
    return AlignedRecording(clips, frames=len(rec.valid), invalid_frames=int((~rec.valid).sum()),
                            trimmed_frames=int(index[0] + len(rec.valid) - 1 - index[-1]),
                            splits=len(pieces) - 1, dropped_pieces=dropped,
                            dropped_frames=dropped_frames)


# ---------------------------------------------------------------- corpus

SPLITS = ("train", "val", "test")
SUMMARY_FILE = "fms_summary.json"


def split_subjects(subjects: Iterable[str], fractions=(0.7, 0.15, 0.15),
                   seed: int = 0) -> dict[str, list[str]]:
    """Shuffle the subjects (seeded) and deal them to train/val/test by `fractions`; val and
    test get at least one subject each when their fraction is positive, train the rest."""
    subjects = sorted(set(subjects))
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"split_fractions must be three non-negative numbers (train, val, test) "
                         f"summing to 1, got {fractions.tolist()}")
    n = len(subjects)
    n_val, n_test = (max(int(round(f * n)), 1) if f > 0 else 0 for f in fractions[1:])
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} subject(s) cannot fill train/val/test with fractions "
                         f"{fractions.tolist()}; need at least {n_val + n_test + 1}")
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(n)]
    return {"train": sorted(order[n_val + n_test:]), "val": sorted(order[:n_val]),
            "test": sorted(order[n_val:n_val + n_test])}


@dataclass
class CorpusSummary:
    """Everything `write_fms_corpus` did, counted."""
    out_dir: str
    episodes: int
    recordings: int
    clips: int                          # clips written, mirrored copies included
    mirrored: int
    subjects: dict[str, list[str]]      # split -> subjects
    split_clips: dict[str, int]
    movement_grade: dict[str, dict[int, int]]   # source clips (no mirrors) per movement, grade
    frames_30fps: int
    invalid_frames: int
    trimmed_frames: int
    filled_gaps: int
    filled_frames: int
    splits_at_gaps: int
    dropped_pieces: int
    dropped_frames: int
    too_long: int                       # clips the HumanML3D reader will filter (>= its maximum)
    # (path, reason): what the reader skipped (`FMSDataset.skipped`), then recordings that could
    # not be aligned
    skipped: list[tuple[str, str]]
    alignment: dict

    def report(self) -> str:
        """A readable account of the corpus."""
        lines = [
            f"{self.out_dir}: {self.clips} clips ({self.mirrored} mirrored) from "
            f"{self.recordings} recordings of {self.episodes} episodes",
            "  " + ", ".join(f"{s}: {self.split_clips[s]} clips / {len(self.subjects[s])} "
                             f"subjects" for s in SPLITS),
            f"  {self.frames_30fps} frames at 30 fps, {self.invalid_frames} invalid: "
            f"{self.trimmed_frames} trimmed at the ends, {self.filled_frames} filled in "
            f"{self.filled_gaps} short gaps; {self.splits_at_gaps} splits at long gaps",
            f"  dropped {self.dropped_pieces} pieces shorter than {MIN_JOINT_FRAMES} frames at "
            f"20 fps ({self.dropped_frames} frames at 30 fps); {self.too_long} clips of "
            f"{dataset.MAX_FRAMES} or more frames (the reader will filter them)",
            f"  skipped {len(self.skipped)} inputs" + (":" if self.skipped else ""),
        ]
        lines += [f"    {line}" for line in skip_counts(self.skipped)]
        return "\n".join(lines)


def _clip_name(rec: Recording, piece: int, n_pieces: int) -> str:
    name = f"{rec.view}_{rec.subject}_{rec.movement}_e{rec.episode}"
    return f"{name}_p{piece}" if n_pieces > 1 else name


def _remove_previous_corpus(out: Path) -> None:
    """Delete the clip files of an FMS corpus written earlier into `out` (those its metadata
    lists), so that a smaller corpus never leaves stale clips behind."""
    if not (out / META_FILE).is_file():
        return
    for name in read_fms_meta(out):
        for sub, ext in ((FEATURES_DIR, "npy"), (JOINTS_DIR, "npy"), (TEXTS_DIR, "txt")):
            (out / sub / f"{name}.{ext}").unlink(missing_ok=True)


def write_fms_corpus(fms: FMSDataset, out_dir, mirror: bool = False,
                     split_fractions=(0.7, 0.15, 0.15), seed: int = 0,
                     alignment: Alignment | None = None, progress: bool = True) -> CorpusSummary:
    """Align every recording of `fms` and write the HumanML3D layout under `out_dir`.

    Writes new_joint_vecs/, new_joints/ and texts/ (the plain captions of `captions.py` with their
    tokens) per clip; train/val/test.txt split by subject (`split_subjects`) so that no subject
    is in two splits; Mean.npy/Std.npy from the train clips; `fms_meta.json` mapping each clip
    name to its subject, movement, episode, view, grade, expert grades and mirrored flag, so that
    a conditioning style can be applied at load time; and `fms_summary.json` with the alignment
    numbers and every count. With `mirror`, each clip also gets a left-right mirrored copy named
    `M<name>` (joints mirrored before processing, movement swapped to its mirror, e.g. m03 <-> m04,
    with that movement's captions). `alignment` defaults to `fit_alignment` over all recordings.
    The clips of an FMS corpus written earlier into `out_dir` are replaced.
    """
    out = Path(out_dir)
    recordings = [(ep, rec) for ep in fms for rec in ep.recordings.values()]
    if not recordings:
        raise ValueError(f"no recordings to write to {out}: the FMS dataset is empty; "
                         + "; ".join(skip_counts(fms.skipped)))
    _remove_previous_corpus(out)
    alignment = alignment or fit_alignment(rec for _, rec in recordings)
    groups = split_subjects((ep.subject for ep, _ in recordings), split_fractions, seed)
    subject_split = {s: split for split, subjects in groups.items() for s in subjects}
    names = {s: [] for s in SPLITS}
    meta, totals = {}, Counter()
    skipped = [(str(path), reason) for path, reason in fms.skipped]
    movement_grade = {m: {g: 0 for g in GRADES} for m in MOVEMENTS}
    for ep, rec in tqdm(recordings, desc="aligning FMS recordings", disable=not progress):
        try:
            aligned = align_recording(rec, alignment)
        except ValueError as err:
            skipped.append((str(rec.path), str(err)))
            continue
        for key in ("frames", "invalid_frames", "trimmed_frames", "splits", "dropped_pieces",
                    "dropped_frames"):
            totals[key] += getattr(aligned, key)
        n_pieces = aligned.splits + 1
        for clip in aligned.clips:
            totals["filled_frames"] += clip.filled_frames
            totals["filled_gaps"] += clip.filled_gaps
            movement_grade[rec.movement][ep.grade] += 1
            name = _clip_name(rec, clip.piece, n_pieces)
            info = {"subject": rec.subject, "movement": rec.movement, "episode": rec.episode,
                    "view": rec.view, "grade": ep.grade, "expert_grades": list(ep.expert_grades),
                    "source": rec.path.name, "piece": clip.piece,
                    "start": round(clip.start, 4), "end": round(clip.end, 4)}
            copies = [(name, clip.joints, rec.movement, False)]
            if mirror:
                copies.append(("M" + name, mirror_joints(clip.joints),
                               MOVEMENTS[rec.movement].mirror, True))
            for clip_name, joints, movement, mirrored in copies:
                features = process_joints(joints)
                dataset.write_clip(out, clip_name, features, recover_joints(features),
                                   plain_captions(movement))
                meta[clip_name] = {**info, "movement": movement, "mirrored": mirrored,
                                   "frames": len(features)}
                names[subject_split[rec.subject]].append(clip_name)
                totals["too_long"] += len(features) >= dataset.MAX_FRAMES
    if not names["train"]:
        raise ValueError(f"no clip of a train subject survived alignment; nothing to write to "
                         f"{out} ({len(skipped)} recordings skipped)")
    dataset.write_splits(out, names)
    dataset.write_mean_std(out, names["train"])
    summary = CorpusSummary(
        out_dir=str(out), episodes=len({(ep.subject, ep.movement, ep.episode)
                                        for ep, _ in recordings}),
        recordings=len(recordings), clips=len(meta),
        mirrored=sum(m["mirrored"] for m in meta.values()), subjects=groups,
        split_clips={s: len(n) for s, n in names.items()}, movement_grade=movement_grade,
        frames_30fps=totals["frames"], invalid_frames=totals["invalid_frames"],
        trimmed_frames=totals["trimmed_frames"], filled_gaps=totals["filled_gaps"],
        filled_frames=totals["filled_frames"], splits_at_gaps=totals["splits"],
        dropped_pieces=totals["dropped_pieces"], dropped_frames=totals["dropped_frames"],
        too_long=totals["too_long"], skipped=skipped, alignment=alignment.to_dict())
    (out / META_FILE).write_text(json.dumps(meta, indent=1))
    write_summary(out, summary)
    return summary


def write_summary(out, summary: CorpusSummary) -> None:
    (Path(out) / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=1))
