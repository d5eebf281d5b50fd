"""The quantitative-results chapter: the evaluator a run uses, its Table 1, and plausibility.

The paper's Table 1 needs a text-motion evaluator. With a data root and the published T2M files
named in the profile, that is the published evaluator; otherwise one is trained here on the run's
HumanML3D-layout train split and cached in the run directory (`evaluator/evaluator.pt`, with a
stamp of its settings and corpus, so a rerun reuses it and a changed corpus retrains it). Numbers
from a self-trained evaluator are comparable only within the run that trained it. This module
also wraps the run's fully trained models as the generator functions `evaluate.t2m_table` asks
for (keeping the first replication's motions), lays its result out as the paper's table (our
"mean ± ci" beside the paper's published means, clearly labelled), words the comparisons between
rows from the numbers, and gathers the physical plausibility measures of `fmsnb.physics` over
sets of motions.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fmsnb import atomic, corpora, dataset, evaluate, metrics, paper, physics, stages
from fmsnb.config import EvaluatorConfig, Profile
from fmsnb.evaluator import (Evaluator, WordVectorizer, load_published, normalisation_problems,
                             train_evaluator)
from fmsnb.humanml3d import N_JOINTS
from fmsnb.train import CHECKPOINT_RE

EVALUATOR_FILE = "evaluator.pt"
METRICS = ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "MModality")
# How the paper reads each metric: higher or lower is better, or closer to the ground truth.
BETTER = {"R@1": "higher", "R@2": "higher", "R@3": "higher", "FID": "lower", "MM-Dist": "lower",
          "Diversity": "ground truth", "MModality": None}
GROUND_TRUTH = "Ground truth"
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
    (`evaluator.normalisation_problems`); a ValueError names the profile key, the file and
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


def save_evaluator(ev: Evaluator, path, stamp: str) -> Path:
    """Write the evaluator's modules, word table and mean/std to `path` atomically."""
    state = {"stamp": stamp, "source": ev.source, "cfg": asdict(ev.cfg),
             "vectors": torch.from_numpy(ev.words.vectors), "index": dict(ev.words.index),
             "mean": torch.from_numpy(np.asarray(ev.mean, np.float32)),
             "std": torch.from_numpy(np.asarray(ev.std, np.float32)),
             "modules": {k: m.state_dict() for k, m in ev.modules().items()}}
    atomic.torch_save(state, path)
    return Path(path)


def load_evaluator(path) -> tuple[Evaluator, str]:
    """An evaluator written by `save_evaluator`, and the stamp it was saved with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved evaluator at {path}")
    bad = f"{path}: not a saved evaluator of this version"
    state = atomic.torch_load(path, bad)
    try:
        words = WordVectorizer(state["vectors"].numpy(), state["index"])
        ev = Evaluator(words, state["mean"].numpy(), state["std"].numpy(), state["source"],
                       EvaluatorConfig(**state["cfg"]))
        for key, module in ev.modules().items():
            module.load_state_dict(state["modules"][key])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:    # a dict of another layout
        raise ValueError(f"{bad} ({e})") from e
    ev._eval()
    return ev, state["stamp"]


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


def retrieval_check(ev: Evaluator, items, replications: int = 5, seed: int = 0) -> dict:
    """R@1..3 and MM-Dist of real (caption, motion) pairs of `items`, in batches of 32, averaged
    over `replications` draws of captions and crops, beside chance (k / 32): a held-out split
    far above chance shows the evaluator learned to match texts to motions."""
    rng = np.random.default_rng(seed)
    runs = {k: [] for k in ("R@1", "R@2", "R@3", "MM-Dist")}
    for _ in range(replications):
        feats, _, tokens = evaluate.draw_test_set(items, len(items), rng)
        for key, value in metrics.retrieval(ev.embed_texts(tokens),
                                            ev.embed_motions(feats)).items():
            runs[key].append(value)
    batch = metrics.R_PRECISION_BATCH
    return {"pairs": len(items) // batch * batch, "replications": replications,
            **{k: metrics.confidence_interval(v) for k, v in runs.items()},
            "chance": {f"R@{k}": k / batch for k in (1, 2, 3)}}


# --- Table 1 -------------------------------------------------------------------------------

@dataclass
class FirstCall:
    """A generator that keeps the motions of its first call. `evaluate.t2m_table` calls each
    generator first for its first replication, so `motions` are then the model's answers to
    that replication's test captions, measured again for plausibility without sampling anew."""
    generate: evaluate.Generator
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


def _cell(value, digits: int) -> str:
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
    return pd.DataFrame([[_cell(r.get(m), digits) for m in METRICS] for _, r in rows],
                        index=index, columns=list(METRICS))


def _as_pair(value) -> tuple[float, float | None]:
    """(mean, ci) from a (mean, ci) pair, or (mean, None) from a bare mean."""
    if isinstance(value, (tuple, list)):
        return float(value[0]), float(value[1])
    return float(value), None


def describe_change(metric: str, before, after, before_label: str, after_label: str,
                    ground_truth=None, digits: int = 3) -> str:
    """One sentence on how `metric` moved from row `before_label` to row `after_label`.

    before/after are (mean, ci) or bare means (the paper's). With intervals, the sentence says
    whether the change exceeds their combined half-widths (the 95% intervals do not overlap),
    or that it cannot be judged when both half-widths are 0 (a single replication); beyond the
    intervals it says whether that is better or worse by the metric's reading (higher / lower,
    or closer to `ground_truth` (mean, ci) for diversity). Multimodality gets no verdict.
    """
    (a, ca), (b, cb) = _as_pair(before), _as_pair(after)
    if b == a:
        sentence = (f"{metric} was the same, {_cell(before, digits)} ({before_label}) and "
                    f"{_cell(after, digits)} ({after_label})")
    else:
        sentence = (f"{metric} {'rose' if b > a else 'fell'} from {_cell(before, digits)} "
                    f"({before_label}) to {_cell(after, digits)} ({after_label})")
    if ca is None or cb is None:
        return sentence + "."
    if ca == 0 and cb == 0:     # one replication: no spread to judge the change against
        return sentence + "; a single replication gives no interval to judge it by."
    if abs(b - a) <= ca + cb:
        return sentence + "; the 95% intervals overlap, so this protocol cannot tell them apart."
    better = BETTER.get(metric)
    if better == "ground truth" and ground_truth is not None:
        gt = _as_pair(ground_truth)[0]
        verdict = "closer to" if abs(b - gt) < abs(a - gt) else "farther from"
        return sentence + f", beyond the 95% intervals: {verdict} the ground truth."
    if better in ("higher", "lower"):
        improved = (b > a) == (better == "higher")
        return sentence + (f", beyond the 95% intervals: {'better' if improved else 'worse'} "
                           f"({better} is better).")
    return sentence + ", beyond the 95% intervals."


# --- physical plausibility -----------------------------------------------------------------

def split_joints(root, split: str) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """Joints (T_i, 22, 3) of every clip of split `split` in a layout folder (`new_joints/`);
    unreadable or malformed files are skipped and listed as (path, reason)."""
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"split file {split_file} not found")
    joints, skipped = [], []
    for name in split_file.read_text().split():
        path = root / dataset.JOINTS_DIR / f"{name}.npy"
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


def plausibility_stats(motions: list[np.ndarray]) -> dict:
    """Each `physics` measure over a set of joints (T_i, 22, 3): (mean, 95% ci) over motions."""
    if not motions:
        raise ValueError("no motions to measure")
    stats = {name: metrics.confidence_interval([f(m) for m in motions])
             for name, f in physics.MEASURES.items()}
    return {"motions": len(motions), **stats}


def significant(x: float, digits: int = 3) -> str:
    """x to `digits` significant digits: the measures span 1e-4 m to 1e2 m/s^3, and fixed
    decimals would show a small but real penetration as 0.000."""
    return f"{float(x):.{digits}g}"


def plausibility_frame(stats: dict[str, dict], digits: int = 3) -> pd.DataFrame:
    """Rows: motion sets; columns: number of motions and each measure as "mean ± ci", each to
    `digits` significant digits."""
    return pd.DataFrame({name: {"motions": s["motions"],
                                **{m: f"{significant(s[m][0], digits)} ± "
                                      f"{significant(s[m][1], digits)}" for m in physics.MEASURES}}
                         for name, s in stats.items()}).T
