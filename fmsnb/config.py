"""Run profiles: the dataclasses behind `params/<profile>.yml`.

A profile (`smoke`, `default`, `full`) fixes every setting of a run: corpus sizes, model sizes,
step counts, evaluation protocol. Notebooks and the command line take only a profile name (plus a
data root for the real datasets) and read everything else from here, so that switching profile
changes numbers, never code. Each section of the YAML file maps onto one dataclass below, and
every value is checked against its field's type when the file is read: an unknown key or a value
of the wrong type is an error naming the file, the section, the key, the value and the expected
type, so that a typo never silently falls back to a default nor fails later in a run. Numbers
that YAML reads as text (`2e-4`, which has no dot) are accepted where a float is expected.
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

from fmsnb.classifier import ClassifierConfig
from fmsnb.diffusion import DiffusionConfig
from fmsnb.fms import POLICIES, VIEWS
from fmsnb.mdm import MDMConfig
from fmsnb.publish.bench import BenchConfig
from fmsnb.t2m_evaluator import EvaluatorConfig
from fmsnb.t2m_protocol import EvalConfig
from fmsnb.train import TrainConfig


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
        """(scale, interval) of grade guidance for conditioning style `style`."""
        if style != "token":
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


@dataclass
class EvaluatorFiles:
    """The published T2M evaluator, when a user provides it (relative to data_root)."""
    checkpoint: str | None = None  # t2m/text_mot_match/model/finest.tar
    glove: str | None = None       # the glove/ folder with our_vab_*.{npy,pkl}
    mean: str | None = None        # the evaluator's own mean/std (t2m meta), .npy
    std: str | None = None


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
