"""Run profiles: the dataclasses behind `params/<profile>.yml`.

A profile (`smoke`, `default`, `full`) fixes every setting of a run: corpus sizes, model sizes,
step counts, evaluation protocol. Notebooks and the command line take only a profile name (plus a
data root for the real datasets) and read everything else from here, so that switching profile
changes numbers, never code. Each section of the YAML file maps onto one dataclass below; an
unknown key is an error naming the file, so that a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmsnb.bench import BenchConfig
from fmsnb.classifier import ClassifierConfig
from fmsnb.diffusion import DiffusionConfig
from fmsnb.evaluate import EvalConfig
from fmsnb.evaluator import EvaluatorConfig
from fmsnb.mdm import MDMConfig
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


@dataclass
class TextConfig:
    """The frozen text encoder: `minilm` (offline default, 384-d) or `clip` (MDM's, 512-d)."""
    encoder: str = "minilm"
    weights: str | None = None     # a local CLIP ViT-B/32 file; relative paths: under data_root


@dataclass
class SamplingConfig:
    """How motions are sampled everywhere in the book (MDM: 1000 steps, guidance 2.5)."""
    guidance: float = 2.5
    sampler: str = "ddim"          # "ddim" (respaced, fast) or "ddpm" (all diffusion steps)
    steps: int = 50                # DDIM steps
    batch_size: int = 64


@dataclass
class GenerationConfig:
    """The generated FMS datasets of the classification chapter (paper: 40 per cell)."""
    per_cell: int = 40             # motions per (movement, grade): 15 x 3 x 40 = 1,800
    generated_epochs: int = 512    # classifier epochs on a generated set (paper: 512)


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
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    evaluator_files: EvaluatorFiles = field(default_factory=EvaluatorFiles)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    root: Path = field(default=Path("."), repr=False)

    @property
    def run_dir(self) -> Path:
        """Where this profile's artefacts go: `runs/<profile>/` under the repository root, or
        under $FMSNB_RUNS when set (separate runs of one checkout, e.g. parallel test runs)."""
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


def _build(cls, values: dict[str, Any], source: str):
    """Instantiate dataclass `cls` from a YAML mapping, recursing into dataclass-typed fields."""
    if not isinstance(values, dict):
        raise ValueError(f"{source}: section for {cls.__name__} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; "
                         f"known: {sorted(fields)}")
    kwargs = {}
    for key, value in values.items():
        default = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None
        sub = default() if default is not None else None
        if dataclasses.is_dataclass(sub):
            kwargs[key] = _build(type(sub), value or {}, f"{source} [{key}]")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def load_profile(name: str, data_root: str | None = None, root: Path | None = None) -> Profile:
    """Read `params/<name>.yml`; `data_root`, when given, points the run at the real datasets."""
    root = Path(root).resolve() if root is not None else repo_root()
    path = root / "params" / f"{name}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "params").glob("*.yml"))
        raise FileNotFoundError(f"no profile {name!r}: {path} does not exist (known: {known})")
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    if values.get("name", name) != name:
        raise ValueError(f"{path}: name {values['name']!r} does not match the file name {name!r}")
    values["name"] = name
    profile = _build(Profile, values, str(path))
    profile.root = root
    if data_root:
        profile.data_root = str(Path(data_root).expanduser().resolve())
    return profile
