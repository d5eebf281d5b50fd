"""An embedded, procedural stand-in for the FMS dataset, written in its published on-disk format.

The real FMS dataset (Xing et al. 2022) is released on request only, so the book runs on this
stand-in by default. It is NOT the real dataset: subjects are `fmsnb.standin.body` figures of
random proportions that perform all 15 movements with grade-specific quality
(`fmsnb.standin.fms_moves`: a grade-3 deep squat reaches full depth with an upright torso and
flat heels, a grade-1 one stays shallow, leans and drifts to one side, and so on for every test),
recorded by two simulated Azure Kinects. This module plans the corpus (subjects, grades,
experts), simulates the sensors and writes the files (`write`).
Everything a real file carries is reproduced so that `fmsnb.fms` reads both alike: the file
names, the JSON keys (with the misspelled `original_frmae_num`), millimetres in the depth
camera's frame (+X right, +Y down, +Z away from the camera) with the depth camera pitched
`CAMERA_TILT_DEG` downward, 30 fps, joint orientations, 2D colour pixels, confidence levels,
frames without a body, and three expert grades per episode that occasionally disagree.
The motion is authored in a world frame (metres, +Y up, floor at y = 0) and then seen by each
camera with its own sensor jitter.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.stats import norm
from tqdm.auto import tqdm

from fmsnb.fms import ESSENTIAL_JOINTS, FPS, GRADES, KINECT_INDEX, MOVEMENTS, VIEW_FOLDERS
from fmsnb.quaternion import from_matrix, qmul
from fmsnb.standin.body import BodyShape, Keypoints, random_shape
from fmsnb.standin.fms_moves import Take, perform

# Camera rig (metres, world frame). Both devices stand level at CAMERA_HEIGHT; their depth
# cameras look CAMERA_TILT_DEG below the horizontal, like the Azure Kinect's depth camera
# relative to its colour camera. The front camera faces the subject from FRONT_DISTANCE; the
# side camera looks at the subject's left side from SIDE_DISTANCE.
CAMERA_TILT_DEG = 6.0
CAMERA_HEIGHT = 1.0
FRONT_DISTANCE = 2.8
SIDE_DISTANCE = 2.5
# Colour camera intrinsics for `joint_position_2d_color` (1280 x 720 pinhole).
COLOUR_SIZE = (1280, 720)
COLOUR_FOCAL = 605.0
GRADE_SHARES = (0.20, 0.55, 0.25)  # target shares of grades 1, 2, 3
EXPERT_SLIP = 0.05  # chance that one expert grades one step lower (and again, one higher)
JITTER_MM = 3.0  # sensor noise of a well-seen joint; extremities and face get more


@dataclass(frozen=True)
class Camera:
    """A depth camera at `position` (world, m) looking along the horizontal `heading`, pitched
    down by `tilt_deg`. Camera axes: +X right, +Y down, +Z along the optical axis."""
    name: str
    position: tuple[float, float, float]
    heading: tuple[float, float, float]
    tilt_deg: float = CAMERA_TILT_DEG

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) world-to-camera rotation; its rows are the camera axes in world coordinates."""
        t = np.radians(self.tilt_deg)
        h, up = np.asarray(self.heading, float), np.array([0.0, 1.0, 0.0])
        forward = np.cos(t) * h - np.sin(t) * up
        down = -np.cos(t) * up - np.sin(t) * h
        return np.stack([np.cross(down, forward), down, forward])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in metres -> camera coordinates (..., 3) in millimetres."""
        return 1000.0 * (np.asarray(points) - np.asarray(self.position)) @ self.rotation.T

    def to_colour_pixels(self, points_mm: np.ndarray) -> np.ndarray:
        """Camera points (..., 3) mm -> colour image pixels (..., 2), a level pinhole camera
        (the depth camera's tilt undone) 32 mm to the left of the depth camera."""
        t = np.radians(self.tilt_deg)
        c, s = np.cos(t), np.sin(t)
        untilt = np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])
        p = points_mm @ untilt.T + np.array([32.0, 0.0, 0.0])
        centre = np.array(COLOUR_SIZE) / 2.0
        return COLOUR_FOCAL * p[..., :2] / np.maximum(p[..., 2:], 1.0) + centre


FRONT_CAMERA = Camera("front", (0.0, CAMERA_HEIGHT, FRONT_DISTANCE), (0.0, 0.0, -1.0))
SIDE_CAMERA = Camera("side", (SIDE_DISTANCE, CAMERA_HEIGHT, 0.0), (-1.0, 0.0, 0.0))
CAMERAS = {"front": FRONT_CAMERA, "side": SIDE_CAMERA}


# ---------------------------------------------------------------------------------------------
# The sensor: what each Azure Kinect reports of a performance.

# Extremities and the face are tracked less precisely than the trunk.
_EXTREMITIES = [KINECT_INDEX[n] for n in ("HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT",
                                          "HAND_RIGHT", "HANDTIP_RIGHT", "THUMB_RIGHT")]
_FACE = [KINECT_INDEX[n] for n in ("NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT")]


@dataclass
class Capture:
    """One camera's recording of one episode, exactly what its JSON file holds (unrounded)."""
    view: str
    joints: np.ndarray           # (T, 32, 3) mm, camera frame
    orientations: np.ndarray     # (T, 32, 4) unit quaternions (w, x, y, z), camera frame
    colour_pixels: np.ndarray    # (T, 32, 2) colour image (u, v)
    confidence: np.ndarray       # (T, 32) int 0..3
    has_body: np.ndarray         # (T,) bool: False for frames whose `bodies` list is empty
    timestamps_usec: np.ndarray  # (T,) int64 device time
    source_frames: np.ndarray    # (T,) int64, `original_frmae_num`


def _runs(rng: np.random.Generator, shape: tuple, share: float, sigma: float) -> np.ndarray:
    """A boolean mask (T, ...) that is True in runs of a few frames, on about `share` of it."""
    field = gaussian_filter1d(rng.normal(size=shape), sigma, axis=0, mode="nearest")
    field /= max(field.std(), 1e-9)
    return field > np.quantile(field, 1.0 - share) if share > 0 else np.zeros(shape, bool)


def capture(kp: Keypoints, camera: Camera, rng: np.random.Generator) -> Capture:
    """What `camera` reports of the world keypoints `kp`: its own jitter, lower confidence for
    hands, face and joints hidden behind the body, missed frames, device timestamps."""
    world = kp.kinect32()
    T = len(world)
    exact = camera.to_camera(world)
    # Joints farther from the camera than the pelvis by more than 10 cm are partly occluded.
    hidden = exact[..., 2] - exact[:, :1, 2] > 100.0
    sd = np.full(32, JITTER_MM)
    sd[_EXTREMITIES], sd[_FACE] = 2.5 * JITTER_MM, 1.5 * JITTER_MM
    noise = gaussian_filter1d(rng.normal(size=(T, 32, 3)), 1.0, axis=0, mode="nearest")
    noise /= noise.std()
    joints = exact + noise * sd[:, None] * np.where(hidden, 2.0, 1.0)[..., None]

    confidence = np.full((T, 32), 2, dtype=np.int64)
    low = _runs(rng, (T, 32), 0.5, 4.0) & hidden
    low[:, _EXTREMITIES] |= _runs(rng, (T, len(_EXTREMITIES)), 0.3, 4.0)
    confidence[low] = 1
    if rng.random() < 0.2:      # now and then an essential joint is lost for a few frames
        j = rng.choice(ESSENTIAL_JOINTS)
        start = rng.integers(0, max(T - 8, 1))
        confidence[start:start + rng.integers(2, 8), j] = 0
    confidence[:, _EXTREMITIES] = np.where(rng.random((T, len(_EXTREMITIES))) < 0.02, 0,
                                           confidence[:, _EXTREMITIES])

    has_body = np.ones(T, dtype=bool)
    if rng.random() < 0.3:      # the tracker needs a few frames to find the subject
        has_body[:rng.integers(1, 7)] = False
    for _ in range(rng.poisson(0.7)):   # short dropouts
        start = rng.integers(0, T - 4)
        has_body[start:start + rng.integers(1, 5)] = False

    cam_q = from_matrix(camera.rotation)
    orientations = qmul(np.broadcast_to(cam_q, (T, 32, 4)), kp.kinect32_quats())
    orientations *= np.where(orientations[..., :1] < 0, -1.0, 1.0)   # w >= 0, as the SDK
    source = rng.integers(0, 120) + np.arange(T)
    return Capture(view=camera.name, joints=joints, orientations=orientations,
                   colour_pixels=camera.to_colour_pixels(joints), confidence=confidence,
                   has_body=has_body,
                   timestamps_usec=rng.integers(10**6, 6 * 10**7) + np.round(
                       source * 1e6 / FPS).astype(np.int64),
                   source_frames=source)


def _template(fmt: str, rows: int, cols: int) -> str:
    """A JSON array-of-arrays template with `rows` x `cols` printf fields."""
    row = "[" + ",".join([fmt] * cols) + "]"
    return "[" + ",".join([row] * rows) + "]"


# One body in the published layout; filled with 320 numbers per frame. printf formatting is
# twice as fast as json.dumps here and writes the same JSON.
_BODY = ('{"joint_positions":' + _template("%.1f", 32, 3)
         + ',"joint_orientations":' + _template("%.4f", 32, 4)
         + ',"joint_position_2d_color":' + _template("%.1f", 32, 2)
         + ',"confidence_level":[' + ",".join(["%d"] * 32) + "]}")


def write_capture(path: str | Path, cap: Capture) -> int:
    """Write `cap` as a published skeleton JSON file (compact: 0.1 mm, 0.1 px, 4 decimals for
    quaternions). Returns the number of characters written."""
    T = len(cap.has_body)
    values = np.concatenate([cap.joints.reshape(T, -1), cap.orientations.reshape(T, -1),
                             cap.colour_pixels.reshape(T, -1), cap.confidence], axis=1)
    frames = [
        '{"num_bodies":%d,"timestamp_usec":%d,"bodies":[%s]}'
        % (body, stamp, _BODY % tuple(row) if body else "")
        for body, stamp, row in zip(cap.has_body.tolist(), cap.timestamps_usec.tolist(),
                                    values.tolist())]
    text = ('{"total_frames":%d,"frames":[%s],"original_frmae_num":%s}'
            % (T, ",".join(frames), json.dumps(cap.source_frames.tolist())))
    Path(path).write_text(text)
    return len(text)


# ---------------------------------------------------------------------------------------------
# The corpus: who performs what with which grade, and the files.

@dataclass
class EpisodePlan:
    """One episode of the corpus: its identity, the grade its motion shows, the experts'
    grades, and the performer."""
    subject: str                       # "s01"
    movement: str                      # "m01"
    episode: int                       # 1..max_episodes
    acquired: str                      # YYYYMMDDhhmmss, as in the file name
    grade: int                         # the grade the motion is generated to show
    quality: float                     # 0..1 within that grade's band
    tempo: float
    experts: tuple[int, int, int]      # the three experts' grades
    shape: BodyShape

    def file_name(self, view: str) -> str:
        return f"{view}_{self.subject}_{self.movement}_{self.acquired}_e{self.episode}.json"


def _grade(latent: float) -> int:
    """Grade 1..3 of a standard-normal latent, cut at the quantiles of GRADE_SHARES."""
    return 1 + int(np.searchsorted(norm.ppf(np.cumsum(GRADE_SHARES)[:2]), latent))


def _experts(rng: np.random.Generator, grade: int) -> tuple[int, int, int]:
    """Three expert grades: each slips one step down or up with chance EXPERT_SLIP."""
    slips = rng.choice([-1, 0, 1], size=3, p=[EXPERT_SLIP, 1 - 2 * EXPERT_SLIP, EXPERT_SLIP])
    return tuple(int(g) for g in np.clip(grade + slips, 1, 3))


def plan_corpus(subjects: int, max_episodes: int, seed: int = 0) -> list[EpisodePlan]:
    """Draw the corpus: `subjects` bodies with a fitness level each, 1..`max_episodes`
    episodes of each of the 15 movements, the grade each shows
    (fitness + per-movement and per-episode variation, cut into GRADE_SHARES), its quality
    within the grade, tempo, acquisition time and expert grades."""
    if not 1 <= subjects <= 99 or max_episodes < 1:
        raise ValueError(f"need 1..99 subjects and max_episodes >= 1, got {subjects}, "
                         f"{max_episodes}")
    rng = np.random.default_rng(seed)
    # Fitness levels spread evenly over a standard normal, so that even a dozen subjects
    # give grade shares near GRADE_SHARES.
    fitness_levels = rng.permutation(norm.ppf((np.arange(subjects) + 0.5) / subjects))
    plans = []
    for i in range(subjects):
        shape, fitness, pace = random_shape(rng), fitness_levels[i], rng.uniform(0.85, 1.2)
        clock = datetime(2021, 5, 22, 9, 0) + timedelta(days=i, minutes=int(rng.integers(0, 300)))
        for movement in MOVEMENTS:
            affinity = rng.normal()
            n = int(rng.integers(1, max_episodes + 1))
            for episode in range(1, n + 1):
                latent = 0.75 * fitness + 0.55 * affinity + 0.35 * rng.normal()
                grade = _grade(latent / np.sqrt(0.75**2 + 0.55**2 + 0.35**2))
                clock += timedelta(seconds=int(rng.integers(15, 90)))
                plans.append(EpisodePlan(
                    subject=f"s{i + 1:02d}", movement=movement, episode=episode,
                    acquired=clock.strftime("%Y%m%d%H%M%S"), grade=grade,
                    quality=float(np.clip(0.2 + 0.3 * (grade - 1) + rng.normal(0, 0.08), 0, 1)),
                    tempo=pace * rng.uniform(0.92, 1.08), experts=_experts(rng, grade),
                    shape=shape))
    return plans


def _episode_rng(seed: int, plan: EpisodePlan, stream: int) -> np.random.Generator:
    """An rng for one episode and purpose, independent of the order episodes are made in."""
    key = [seed, int(plan.subject[1:]), int(plan.movement[1:]), plan.episode, stream]
    return np.random.default_rng(key)


def perform_episode(plan: EpisodePlan, seed: int = 0) -> Keypoints:
    """The noise-free world motion (metres, +Y up, floor y = 0) of one planned episode."""
    take = Take(shape=plan.shape, grade=plan.grade, quality=plan.quality, tempo=plan.tempo,
                rng=_episode_rng(seed, plan, 0))
    return perform(take, plan.movement)


def record_episode(plan: EpisodePlan, seed: int = 0) -> dict[str, Capture]:
    """Both cameras' captures {view: Capture} of one planned episode."""
    kp = perform_episode(plan, seed)
    return {view: capture(kp, camera, _episode_rng(seed, plan, k + 1))
            for k, (view, camera) in enumerate(CAMERAS.items())}


README = """PROCEDURAL STAND-IN - NOT THE FMS DATASET

This folder was generated by fmsnb.standin.fms_recorder (seed {seed}, {subjects} subjects, up
to {max_episodes} episodes per movement). It imitates the on-disk format of the FMS dataset of
Xing et al. (Scientific Data 9:104, 2022) so that the same reader works on both, but every
motion in it is synthetic: a procedural body performing the 15 FMS movements with
grade-specific quality, seen by two simulated Azure Kinect cameras (depth camera tilted
{tilt} degrees down, front camera {front} m in front, side camera {side} m to the subject's
left, both {height} m high). The expert grades are simulated too. Numbers obtained on it say
that the pipeline works, nothing about real people. The real dataset is available from its
authors on request.
"""


def write(out_dir: str | Path, subjects: int, max_episodes: int, seed: int = 0,
          progress: bool = True) -> dict:
    """Write the stand-in corpus into `out_dir` in the published layout: `Skeleton data/Front`,
    `Skeleton data/Side` (one JSON file per episode and view), `experts_score.json` and a
    README.txt saying what it is. Skeleton files of an earlier stand-in in `out_dir` are
    replaced; a folder that holds skeleton files but no stand-in README is refused, so that a
    real dataset is never overwritten. Returns a summary (counts, grade shares, bytes, time)."""
    start = time.perf_counter()
    out = Path(out_dir)
    readme = out / "README.txt"
    folders = {view: out / "Skeleton data" / VIEW_FOLDERS[view] for view in CAMERAS}
    old = [p for folder in folders.values() if folder.is_dir() for p in folder.glob("*.json")]
    if old and not (readme.is_file() and readme.read_text().startswith("PROCEDURAL STAND-IN")):
        raise FileExistsError(f"{out}: holds skeleton files and is not a stand-in folder; "
                              "refusing to overwrite it")
    for p in old:
        p.unlink()
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    plans = plan_corpus(subjects, max_episodes, seed)
    scores: dict = {}
    total_bytes, frames, no_body = 0, 0, 0
    for plan in tqdm(plans, desc="FMS stand-in", disable=not progress):
        for view, cap in record_episode(plan, seed).items():
            total_bytes += write_capture(folders[view] / plan.file_name(view), cap)
            frames += len(cap.has_body)
            no_body += int((~cap.has_body).sum())
        scores.setdefault(plan.subject, {}).setdefault(plan.movement, {})[
            f"e{plan.episode}"] = list(plan.experts)
    with open(out / "experts_score.json", "w") as f:
        json.dump(scores, f)
    readme.write_text(README.format(seed=seed, subjects=subjects, max_episodes=max_episodes,
                                    tilt=CAMERA_TILT_DEG, front=FRONT_DISTANCE,
                                    side=SIDE_DISTANCE, height=CAMERA_HEIGHT))
    grades = np.array([p.grade for p in plans])
    experts = np.array([p.experts for p in plans])
    return {"out_dir": str(out), "subjects": subjects, "episodes": len(plans),
            "files": 2 * len(plans), "frames": frames, "no_body_frames": no_body,
            "grades": {g: int((grades == g).sum()) for g in GRADES},
            "expert_disagreements": int((experts.min(1) != experts.max(1)).sum()),
            "three_way_disagreements": int((np.sort(experts, 1) == [1, 2, 3]).all(1).sum()),
            "megabytes": round(total_bytes / 1e6, 1),
            "seconds": round(time.perf_counter() - start, 1)}
