"""Run profiles: the dataclasses behind `params/<profile>.yml`.

A profile (`smoke`, `default`, `full`) fixes every setting of a run: corpus sizes, model sizes,
step counts, evaluation protocol. Notebooks and the command line take only a profile name (plus a
data root for the real datasets) and read everything else from here, so that switching profile
changes numbers, never code. Each section of the YAML file maps onto one dataclass below (the
modules that use a section import its dataclass from here: reading a profile imports no torch),
and every value is checked against its field's type when the file is read: an unknown key or a
value of the wrong type is an error naming the file, the section, the key, the value and the
expected type, so that a typo never silently falls back to a default nor fails later in a run.
Numbers that YAML reads as text (`2e-4`, which has no dot) are accepted where a float is
expected.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import yaml

from fmsnb import metrics
from fmsnb.fms import POLICIES, VIEWS


@dataclass
class StandinConfig:
    """The embedded, procedural HumanML3D-layout corpus (a stand-in, never HumanML3D itself)."""
    clips_per_action: int = 24
    seed: int = 0


@dataclass
class FMSStandinConfig:
    """The embedded, procedural FMS corpus written in the published on-disk format."""
    subjects: int = 12
    max_episodes: int = 3
    seed: int = 0


@dataclass
class FMSConfig:
    """How the FMS recordings become a fine-tuning corpus."""
    views: list = field(default_factory=lambda: ["front", "side"])   # Kinect views to use
    policy: str = "majority"       # expert-grade consolidation: "majority" or "mean"
    mirror: bool = True            # add left-right mirrored copies (the paper's future work)

    def __post_init__(self):
        # checked here, not when the corpora are read: a bad view would surface only after the
        # stand-ins were generated
        bad = [v for v in self.views if v not in VIEWS]
        if bad or not self.views or len(set(self.views)) != len(self.views):
            raise ValueError(f"views: got {self.views!r}, expected distinct names from {VIEWS}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy: got {self.policy!r}, expected one of {POLICIES}")


@dataclass
class TextConfig:
    """The frozen text encoder: `minilm` (offline default, 384-d) or `clip` (MDM's, 512-d)."""
    encoder: str = "minilm"
    weights: str | None = None     # a local CLIP ViT-B/32 file; relative paths: under data_root
    side_words: bool = False       # ours: append the caption's side words (`text.SideWords`)
    words: int = 0                 # ours: > 0 also the encoder's first `words` token outputs


@dataclass
class MDMConfig:
    """The denoiser `mdm.MDM`: its sizes (by default MDM's) and its switches."""
    n_feats: int = 263            # per-frame motion features (HumanML3D: 263)
    latent_dim: int = 512
    layers: int = 8
    heads: int = 4
    ff_size: int = 1024
    dropout: float = 0.1
    activation: str = "gelu"      # "gelu" or "relu"
    text_dim: int = 512           # width of the (frozen) text encoder's embedding
    max_len: int = 196            # longest motion, in frames, the model accepts
    cond_drop_prob: float = 0.1   # share of training samples given the null condition
    mask_padding: bool = True     # False: padded frames take part in attention, as in MDM
    n_grades: int = 0             # 3 enables the `token` style's learned grade embedding
    patch: int = 1                # frames per token; MDM: 1 (ours: > 1, see `mdm`'s docstring)
    words: int = 0                # ours: rows of the encoder's per-token outputs in `text`
    word_dim: int = 0             # width of one such row
    word_tokens: bool = False     # ours: each row a token of the sequence, not pooled into one


@dataclass
class DiffusionConfig:
    """The Gaussian diffusion the model is trained and sampled on (`diffusion`)."""
    steps: int = 1000           # T, the number of diffusion steps the model is trained on
    schedule: str = "cosine"    # the only schedule MDM's text-to-motion models use
    ddim_steps: int = 50        # DDIM steps when `GaussianDiffusion.sample` is given no `steps`


@dataclass
class TrainConfig:
    """The settings of one training run (the paper's are `paper.HP1`, `HP2` and `FINETUNE`)."""
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.0
    steps: int = 600_000
    ema_decay: float | None = None       # None: no EMA of the weights
    checkpoint_every: int = 50_000       # the paper saves every 50k steps
    log_every: int = 100
    seed: int = 0
    grad_clip: float | None = None       # max gradient norm; None: no clipping
    num_workers: int = 0
    warmup: int = 0                      # steps of linear learning-rate warm-up from 0
    decay: str = "none"                  # "none" (constant lr) or "cosine" (to final_lr * lr)
    final_lr: float = 0.0                # the cosine's end, as a fraction of lr
    text_gain_cap: float = 1.0           # > 1: amplify caption differences (`mdm.text_gain`)
    balance_grades: bool = False         # fine-tuning: every grade equally often (`grade_pool`)
    grade_drop: float = 0.0              # fine-tuning: share of items shown without their grade
    cond_lr_scale: float = 1.0           # ours: the condition's layers learn this much faster
    bf16: bool = False                   # forward pass under bfloat16 autocast (for GPUs)
    compile: bool = False                # the model's forward through torch.compile (for GPUs)

    def __post_init__(self):
        problems = [f"{k} must be >= {low}, got {getattr(self, k)}" for k, low in
                    (("batch_size", 1), ("steps", 0), ("checkpoint_every", 1), ("log_every", 1),
                     ("num_workers", 0), ("lr", 0), ("weight_decay", 0), ("warmup", 0),
                     ("cond_lr_scale", 0))
                    if getattr(self, k) < low]
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            problems.append(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if self.decay not in ("none", "cosine"):
            problems.append(f"decay must be 'none' or 'cosine', got {self.decay!r}")
        if not 0 <= self.grade_drop < 1:
            problems.append(f"grade_drop must be in [0, 1), got {self.grade_drop}")
        if not 0 <= self.final_lr <= 1:
            problems.append(f"final_lr must be in [0, 1], got {self.final_lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            problems.append(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if problems:
            raise ValueError("bad TrainConfig: " + "; ".join(problems))


@dataclass
class SamplingConfig:
    """How motions are sampled everywhere in the book (MDM: 1000 steps, guidance 2.5)."""
    guidance: float = 2.5
    sampler: str = "ddim"          # "ddim" (respaced, fast) or "ddpm" (all diffusion steps)
    steps: int = 50                # DDIM steps
    batch_size: int = 64
    # Grade guidance (ours; `diffusion.guided`) in the "<style>+gg" ablations: its scale and the
    # low-noise share of the diffusion steps it acts on (`GaussianDiffusion.sample`), for the
    # caption styles; the token style, whose grade is a learned vector and not a word, may have
    # its own (None: the same).
    grade_guidance: float = 6.0
    grade_guidance_interval: float = 1.0
    token_grade_guidance: float | None = None
    token_grade_guidance_interval: float | None = None

    def __post_init__(self):
        for key in ("grade_guidance_interval", "token_grade_guidance_interval"):
            share = getattr(self, key)
            if share is not None and not 0 < share <= 1:
                raise ValueError(f"{key} must lie in (0, 1], got {share}")

    def grade_guidance_for(self, style: str) -> tuple[float, float]:
        """(scale, interval) of grade guidance for conditioning style `style`: the `token_`
        ones, where set, for a style whose grade goes to the model as a token (`grade_token`)."""
        from fmsnb.captions import check_style     # here: captions imports torch (dataset)
        if not check_style(style).grade_token:
            return self.grade_guidance, self.grade_guidance_interval
        return (self.grade_guidance if self.token_grade_guidance is None
                else self.token_grade_guidance,
                self.grade_guidance_interval if self.token_grade_guidance_interval is None
                else self.token_grade_guidance_interval)


@dataclass
class GenerationConfig:
    """The generated FMS datasets of the classification chapter (paper: 40 per cell)."""
    per_cell: int = 40             # motions per (movement, grade): 15 x 3 x 40 = 1,800
    generated_epochs: int = 512    # classifier epochs on a generated set (paper: 512)
    grade_guided: list = field(default_factory=list)   # styles also sampled as "<style>+gg"


# Replications of MDM's published evaluation (eval_humanml.py): 20 without multimodality
# (its mode `wo_mm`), 5 with it (`mm_short`).
REPLICATIONS = {False: 20, True: 5}


@dataclass
class EvalConfig:
    """The T2M evaluation protocol of Table 1 (`t2m_protocol`); the defaults are MDM's."""
    replications: int = REPLICATIONS[False]     # 5 are enough when multimodality is computed
    samples: int = 1000              # test motions per replication
    diversity_pairs: int = metrics.DIVERSITY_PAIRS
    mm_captions: int = 100
    mm_repeats: int = 30
    mm_pairs: int = metrics.MULTIMODALITY_PAIRS
    allow_smaller: bool = False      # a profile may run a smaller protocol, flagged in the table
    seed: int = 0

    def check(self, n_available: int, multimodality: bool = True) -> list[str]:
        """The deviations from the published protocol, with or without multimodality (which
        decides the replications it asks for, `REPLICATIONS`); an error if they are not
        allowed."""
        published = EvalConfig(replications=REPLICATIONS[multimodality])
        notes = []
        if min(self.samples, n_available) < metrics.R_PRECISION_BATCH:
            raise ValueError(f"the test split has {n_available} usable clips and the profile asks "
                             f"for {self.samples}: R-precision needs at least "
                             f"{metrics.R_PRECISION_BATCH}")
        for key in ("replications", "samples", "diversity_pairs", "mm_captions", "mm_repeats",
                    "mm_pairs"):
            if getattr(self, key) < getattr(published, key):
                notes.append(f"{key} {getattr(self, key)} < {getattr(published, key)}")
        if n_available < self.samples:
            notes.append(f"only {n_available} test clips available for {self.samples} samples")
        if notes and not self.allow_smaller:
            raise ValueError("the profile's evaluation is smaller than the published protocol ("
                             + "; ".join(notes) + "); set allow_smaller in the profile to run it "
                             "as a flagged smaller protocol")
        return notes


@dataclass
class EvaluatorConfig:
    """The T2M evaluator (`t2m_evaluator`): the published one's sizes (a self-trained one may be
    smaller on a CPU) and the training of a self-trained one."""
    text_hidden: int = 512
    movement_hidden: int = 512
    motion_hidden: int = 1024
    embed_dim: int = 512
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-4
    margin: float = 10.0
    seed: int = 0


@dataclass
class EvaluatorFiles:
    """The published T2M evaluator, when a user provides it (relative to data_root)."""
    checkpoint: str | None = None  # t2m/text_mot_match/model/finest.tar
    glove: str | None = None       # the glove/ folder with our_vab_*.{npy,pkl}
    mean: str | None = None        # the evaluator's own mean/std (t2m meta), .npy
    std: str | None = None


@dataclass
class ClassifierConfig:
    """The FMS-grade LSTM classifier and its training (`classifier`, the paper's section 4.5)."""
    input: str = "features"      # "features" (263 per frame) or "joints" (66 per frame)
    hidden: int = 120
    epochs: int = 64             # the paper: 64 on real data, 512 on generated sets
    lr: float = 5e-4
    weight_decay: float = 1e-5
    gamma: float = 2.0           # focal loss focusing parameter; 0 = cross-entropy
    batch_size: int = 32
    frame_step: int = 1          # read every k-th frame (1: all 20 per second)
    seed: int = 0


@dataclass
class BenchConfig:
    """The performance benchmark (`publish.bench`): model size, batch, steps timed."""
    model: MDMConfig = field(default_factory=MDMConfig)   # text_dim follows the encoder
    encoder: str = "minilm"       # ours, cached
    clip_weights: str | None = None   # MDM's CLIP ViT-B/32; None: its architecture, random weights
    batch_size: int = 32          # training batch
    train_frames: int = 196       # training pads motions to this many frames
    train_steps: int = 10         # timed steps per variant (after one warm-up step each)
    n_motions: int = 10           # motions sampled together (MDM samples 10 per prompt batch)
    sample_frames: int = 120      # length of each sampled motion (6 s at 20 fps)
    mdm_steps: int = 1000         # MDM's ancestral steps
    mdm_steps_timed: int = 100    # of which this many are timed, then extrapolated
    ddim_steps: int = 50
    repeats: int = 3              # whole DDIM runs timed
    guidance: float = 2.5
    seed: int = 0
    # Draws of test captions on which the trained base model's two samplers are scored
    # (`performance.sampler_quality`, chapter 08).
    sampler_draws: int = 2


@dataclass
class Profile:
    name: str
    seed: int = 0
    # Folder holding the real datasets (`HumanML3D/`, `FMS/`); None means the embedded stand-ins.
    data_root: str | None = None
    standin: StandinConfig = field(default_factory=StandinConfig)
    fms_standin: FMSStandinConfig = field(default_factory=FMSStandinConfig)
    fms: FMSConfig = field(default_factory=FMSConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: MDMConfig = field(default_factory=MDMConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    pretrain: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig = field(default_factory=TrainConfig)
    styles: list = field(default_factory=lambda: ["numerical", "textual", "token"])
    # MDM's released model (model<step>.pt, its args.json beside it; relative: under data_root)
    # as the run's base: the fine-tunes start from it and Table 1's Base MDM row is it
    # (`stages.base_checkpoint`). The run still pretrains its own base, chapter 03's model.
    mdm_release: str | None = None
    # Styles fine-tuned at once, each in its own process with one torch thread
    # (`stages.finetune_styles`); 1: one after another in this process, with its threads.
    style_processes: int = 1
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    evaluator_files: EvaluatorFiles = field(default_factory=EvaluatorFiles)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    root: Path = field(default=Path("."), repr=False)
    # A sweep variant's own folder (`sweep.variant`); None: the profile's run folder.
    run_path: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.style_processes < 1:
            raise ValueError(f"style_processes must be >= 1, got {self.style_processes}")
        # Checked whatever the sampler: the performance chapter samples with DDIM regardless.
        if not 1 <= self.sampling.steps <= self.diffusion.steps:
            raise ValueError(f"sampling.steps (DDIM steps) must lie in 1..diffusion.steps = "
                             f"{self.diffusion.steps}, got {self.sampling.steps}")

    @property
    def run_dir(self) -> Path:
        """Where this profile's artefacts go: `runs/<profile>/` under the repository root, or
        under $FMSNB_RUNS when set (separate runs of one checkout, e.g. parallel test runs)."""
        if self.run_path is not None:
            return self.run_path
        runs = Path(os.environ["FMSNB_RUNS"]) if os.environ.get("FMSNB_RUNS") else self.root / "runs"
        return runs / self.name

    @property
    def uses_real_data(self) -> bool:
        return self.data_root is not None

    def data_file(self, path: str) -> Path | None:
        """A file the profile names: absolute as given, else under the data root (None when
        it is relative and there is no data root)."""
        if Path(path).is_absolute():
            return Path(path)
        return Path(self.data_root) / path if self.data_root else None


def repo_root(start: Path | None = None) -> Path:
    """The repository root: $FMSNB_ROOT, else the nearest folder upwards that holds `params/`."""
    if os.environ.get("FMSNB_ROOT"):
        return Path(os.environ["FMSNB_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "fmsnb").is_dir():
            return folder
    raise FileNotFoundError(
        f"no fmsnb repository (a folder with params/ and fmsnb/) at or above {here}; "
        "run from the repository or set FMSNB_ROOT")


def reference_data() -> Path | None:
    """The small real reference files (../shared/data beside the repository, or
    $FMSNB_REFERENCE_DATA), or None where they are not present."""
    path = Path(os.environ.get("FMSNB_REFERENCE_DATA") or repo_root().parent / "shared" / "data")
    return path if (path / "humanml3d").is_dir() else None


# A float as people write it; YAML 1.1 (PyYAML) reads `2e-4` (no dot) as the string "2e-4".
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Mismatch(Exception):
    """A value that does not fit a field's type; the message is the expected type."""


def _type_name(tp) -> str:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}" if typing.get_args(tp) else "a list"
    return "a mapping" if dataclasses.is_dataclass(tp) else getattr(tp, "__name__", str(tp))


def _convert(value, tp, source: str, section: str):
    """`value` as field type `tp` (bool, int, float, str, Path, list[...], X | None, a nested
    dataclass); _Mismatch when it does not fit. No other coercion: "32" is not an int."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, source, section)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, source, section)
            except _Mismatch:
                continue
        raise _Mismatch(_type_name(tp))
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _Mismatch("a finite number (float)")
    elif tp in (str, Path):
        if isinstance(value, str):
            return tp(value)
    elif origin is list or tp is list:
        if isinstance(value, list):
            (item,) = typing.get_args(tp) or (typing.Any,)
            return [_convert(v, item, source, section) for v in value]
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            return value
    else:                                   # a type this loader does not know: as read
        return value
    raise _Mismatch(_type_name(tp))


def _build(cls, values, source: str, section: str = "top level"):
    """Instantiate dataclass `cls` from a YAML mapping, every value checked against its field's
    type (recursing into dataclass-typed fields); a ValueError names the file, the section, the
    key, the value and the expected type."""
    if not isinstance(values, dict):
        raise ValueError(f"{source}: [{section}] must be a mapping of keys to values, got "
                         f"{values!r} ({type(values).__name__})")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: [{section}] unknown key(s) {unknown} for {cls.__name__}; "
                         f"known: {sorted(fields)}")
    kwargs = _checked(cls, values, source, section)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:          # the dataclass's own checks (__post_init__)
        raise ValueError(f"{source}: [{section}] {err}") from None


def _checked(cls, values: dict, source: str, section: str) -> dict:
    """`values` (key -> value) converted to the types of dataclass `cls`'s fields (`_convert`);
    a ValueError names the source, the section, the key, the value and the expected type."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        where = key if section == "top level" else f"{section}.{key}"
        try:
            kwargs[key] = _convert(value, hints[key], source, where)
        except _Mismatch as err:
            raise ValueError(f"{source}: [{section}] {key}: got {value!r} "
                             f"({type(value).__name__}), expected {err}") from None
    return kwargs


def with_values(part, values: dict, source: str, section: str):
    """A copy of the profile section `part` (a dataclass instance) with `values` changed, each
    checked as a profile file's are (`_build`); ValueError naming `source` and the section."""
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(part) if f.init})
    if unknown:
        raise ValueError(f"{source}: [{section}] unknown key(s) {unknown}")
    kwargs = _checked(type(part), values, source, section)
    try:
        return dataclasses.replace(part, **kwargs)
    except (ValueError, TypeError) as err:          # the dataclass's own checks (__post_init__)
        raise ValueError(f"{source}: [{section}] {err}") from None


def load_profile(name: str, data_root: str | None = None, root: Path | None = None) -> Profile:
    """Read `params/<name>.yml`; `data_root`, when given, points the run at the real datasets."""
    root = Path(root).resolve() if root is not None else repo_root()
    path = root / "params" / f"{name}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "params").glob("*.yml"))
        raise FileNotFoundError(f"no profile {name!r}: {path} does not exist (known: {known})")
    try:
        with open(path) as f:
            values = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a profile is a mapping of sections (model:, pretrain:, ...), "
                         f"got {type(values).__name__}")
    if values.get("name", name) != name:
        raise ValueError(f"{path}: name {values['name']!r} does not match the file name {name!r}")
    values["name"] = name
    profile = _build(Profile, values, str(path))
    profile.root = root
    if data_root:
        profile.data_root = str(Path(data_root).expanduser().resolve())
    return profile
