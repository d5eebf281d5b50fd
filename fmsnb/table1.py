"""A run's Table 1: its evaluator, its trained models as generators, the table beside the paper's.

The paper's Table 1 needs a text-motion evaluator. With a data root and the published T2M files
named in the profile, that is the published evaluator; otherwise one is trained here on the run's
HumanML3D-layout train split and cached in the run directory (`evaluator/evaluator.pt`, with a
stamp of its settings and corpus, so a rerun reuses it and a changed corpus retrains it). Numbers
from a self-trained evaluator are comparable only within the run that trained it. The run's
models, once fully trained, are the generator functions `t2m_protocol.t2m_table` asks for, each
keeping its first replication's motions (measured again for plausibility), under the paper's row
labels; `t2m_frame` lays the result out as the paper's table: our "mean ± ci" beside the paper's
published means, clearly labelled.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fmsnb import corpora, dataset, paper, stages
from fmsnb.config import Profile
from fmsnb.t2m_evaluator import (Evaluator, load_evaluator, load_published,
                                 normalisation_problems, save_evaluator, train_evaluator)
from fmsnb.t2m_protocol import METRICS, Generator
from fmsnb.train import CHECKPOINT_RE

EVALUATOR_FILE = "evaluator.pt"
# Row labels; the base and numerical ones match the paper's rows in `paper.TABLE1`.
ROW_LABELS = {stages.BASE: "Base MDM", "numerical": "Fine-tuned MDM (numerical)",
              "textual": "Fine-tuned MDM (textual)", "token": "Fine-tuned MDM (token)"}
OURS, PAPERS = "this run", "paper (Table 1)"


def row_label(name: str) -> str:
    """The table row of model `name` (`base` or a style)."""
    return ROW_LABELS.get(name, f"Fine-tuned MDM ({name})")


# --- the evaluator -------------------------------------------------------------------------

def uses_published_evaluator(cfg: Profile) -> bool:
    """True when the profile names the published T2M checkpoint and a data root is given."""
    return bool(cfg.evaluator_files.checkpoint) and cfg.uses_real_data


def _published_path(cfg: Profile, key: str) -> Path:
    value = getattr(cfg.evaluator_files, key)
    if not value:
        raise ValueError(f"params/{cfg.name}.yml: evaluator_files.checkpoint is set but "
                         f"evaluator_files.{key} is not; the published evaluator needs "
                         "checkpoint, glove, mean and std")
    return cfg.data_file(value)


def published_normalisation(cfg: Profile) -> tuple[np.ndarray, np.ndarray]:
    """The published evaluator's mean and std (263,) from the files the profile names
    (`evaluator_files.mean`, `.std`), checked against the HumanML3D corpus's Mean/Std
    (`t2m_evaluator.normalisation_problems`); a ValueError names the profile key, the file and
    what is wrong with it."""
    paths = {key: _published_path(cfg, key) for key in ("mean", "std")}
    arrays = {}
    for key, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"T2M evaluator statistics not found: {path} "
                                    f"(evaluator_files.{key} of params/{cfg.name}.yml)")
        try:
            arrays[key] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"params/{cfg.name}.yml: evaluator_files.{key}: {path} is not a "
                             f"readable .npy file ({err})") from None
    root = corpora.humanml3d_root(cfg, progress=False)
    problems = normalisation_problems(arrays["mean"], arrays["std"], *dataset.read_mean_std(root))
    if problems:
        raise ValueError(f"params/{cfg.name}.yml: " + "; ".join(
            f"evaluator_files.{key}: {paths[key]}: {problem}" for key, problem in problems.items())
            + f" (compared with the dataset's {root / dataset.MEAN_FILE} and {dataset.STD_FILE});"
            " the release's files are t2m/Comp_v6_KLD01/meta/mean.npy and std.npy")
    return arrays["mean"], arrays["std"]


def _training_stamp(cfg: Profile, root: Path) -> str:
    """What a self-trained evaluator depends on: its settings and the corpus's train split."""
    marker = root / corpora.MARKER
    split = (root / "train.txt").read_bytes()
    return json.dumps({"evaluator": asdict(cfg.evaluator),
                       "corpus_settings": marker.read_text() if marker.is_file() else None,
                       "train_split": hashlib.sha1(split).hexdigest()}, sort_keys=True)


def caption_pairs(items: list[dataset.MotionItem]) -> tuple[list[np.ndarray], list[list[str]]]:
    """One (motion (T, 263), caption tokens) pair per caption of every item."""
    pairs = [(item.motion, c.tokens) for item in items for c in item.captions]
    return [m for m, _ in pairs], [t for _, t in pairs]


def get_evaluator(cfg: Profile, progress: bool = True) -> Evaluator:
    """The run's evaluator: the published one (see `uses_published_evaluator`), else the one
    trained on the HumanML3D-layout train split, from `run_dir/evaluator/` when its stamp
    matches, otherwise trained now and saved there. `.source` says which it is."""
    if uses_published_evaluator(cfg):
        return load_published(_published_path(cfg, "checkpoint"), _published_path(cfg, "glove"),
                              *published_normalisation(cfg))
    root = corpora.humanml3d_root(cfg, progress)
    stamp = _training_stamp(cfg, root)
    path = cfg.run_dir / "evaluator" / EVALUATOR_FILE
    if path.is_file():
        ev, saved = load_evaluator(path)
        if saved == stamp:
            return ev
    features, tokens = caption_pairs(dataset.read_split(root, "train", progress=progress).items)
    ev = train_evaluator(features, tokens, cfg.evaluator, progress=progress)
    save_evaluator(ev, path, stamp)
    return ev


# --- Table 1 -------------------------------------------------------------------------------

@dataclass
class FirstCall:
    """A generator that keeps the motions of its first call. `t2m_protocol.t2m_table` calls each
    generator first for its first replication, so `motions` are then the model's answers to
    that replication's test captions, measured again for plausibility without sampling anew."""
    generate: Generator
    motions: list[np.ndarray] | None = None

    def __call__(self, captions: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        out = self.generate(captions, lengths, seed)
        if self.motions is None:
            self.motions = out
        return out


def trained_steps(cfg: Profile) -> dict[str, int]:
    """The step of every model's checkpoint (`stages.model_checkpoint`; an imported MDM
    release's is its own training step). Fails with the stage's error when a model has none,
    and with a ValueError when one trained here stopped short of the profile's steps: a table
    of half-trained models would otherwise pass for the finished ones."""
    steps = {}
    for name in stages.model_names(cfg):
        path = stages.model_checkpoint(cfg, name)
        steps[name] = int(CHECKPOINT_RE.match(path.name).group(1))
        if name == stages.BASE and cfg.mdm_release:
            continue
        planned = (cfg.pretrain if name == stages.BASE else cfg.finetune).steps
        if steps[name] < planned:
            raise ValueError(f"{path}: model {name!r} has trained {steps[name]} of the profile's "
                             f"{planned} steps; finish its training (the pretraining and "
                             "fine-tuning chapters, or python -m fmsnb) before evaluating it")
    return steps


def generators(cfg: Profile) -> dict[str, FirstCall]:
    """Every model of the run as a `generate(captions, lengths, seed)` that keeps its first
    answers, keyed by table row. Fails (see `trained_steps`) unless every model
    has finished training."""
    trained_steps(cfg)
    return {row_label(name): FirstCall(stages.load_generator(cfg, name).generate)
            for name in stages.model_names(cfg)}


def _number(x: float, digits: int) -> str:
    return f"{round(float(x), digits) + 0.0:.{digits}f}"     # + 0.0: no "-0.000"


def cell(value, digits: int) -> str:
    """A table cell: "mean ± ci" of a (mean, ci) pair, a bare mean as is, "—" for None."""
    if value is None:
        return "—"
    if isinstance(value, (tuple, list)):
        return f"{_number(value[0], digits)} ± {_number(value[1], digits)}"
    return _number(value, digits)


def t2m_frame(table: dict, published: dict | None = None, digits: int = 3) -> pd.DataFrame:
    """The paper's Table 1 layout: rows (source, model), columns R@1..MModality, our cells as
    "mean ± 95% ci"; the paper's published means (`paper.TABLE1` by default) follow as
    rows whose source says they are the paper's. Missing values show as "—"."""
    published = paper.TABLE1 if published is None else published
    rows = [((OURS, name), r) for name, r in table["rows"].items()]
    rows += [((PAPERS, name), r) for name, r in published.items()]
    index = pd.MultiIndex.from_tuples([k for k, _ in rows], names=["source", "model"])
    return pd.DataFrame([[cell(r.get(m), digits) for m in METRICS] for _, r in rows],
                        index=index, columns=list(METRICS))
