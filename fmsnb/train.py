"""Training the motion diffusion model: one plain loop for pretraining and FMS fine-tuning.

The loop is the paper's "standard loop" (supplementary, Training setup): AdamW, a batch of motion
and caption pairs, one diffusion loss, one optimiser step, with an optional EMA of the weights.
Caption embeddings come from a `text.CaptionCache` filled once before the loop, so the frozen text
encoder never runs inside it. Batches are a pure function of (seed, step) (consecutive slices of
per-epoch permutations, each item's random crop seeded by (seed, step, slot)), and checkpoints
carry every RNG state, so a run resumed from a checkpoint ends with exactly the weights of an
uninterrupted one. Checkpoints are written atomically and hold the run's whole configuration;
loading one that does not fit the model is an error naming the differing fields. Fine-tuning
(`init_from`) starts from a pretrained checkpoint's weights with a fresh optimiser, and
conditions the captions on the FMS grade by one of the styles of `captions.STYLES`. Under
torchrun the same loop runs on several processes (`distributed`): each trains on its slice of
every step's batch, drawing each sample's noise as one process would, so that the loss log is
one process's, to rounding. bf16 autocast and torch.compile are switches for GPUs.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import random
import re
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from fmsnb import atomic, distributed
from fmsnb.captions import STYLES, Style, check_grade
from fmsnb.config import DiffusionConfig, MDMConfig, TrainConfig
from fmsnb.dataset import MotionDataset
from fmsnb.diffusion import GaussianDiffusion
from fmsnb.mdm import MDM, set_text_gain, text_gain


CHECKPOINT_FORMAT = "fmsnb-checkpoint-1"
CHECKPOINT_RE = re.compile(r"^ckpt_(\d+)\.pt$")
LOSS_FILE, SUMMARY_FILE = "loss.csv", "summary.json"
LOSS_FIELDS = ("step", "loss", "lr", "seconds")
# Train-config fields that a resumed run may change without changing the weights it ends with
# (`steps` only while the learning rate does not decay over them).
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "log_every", "num_workers")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate of step 1..cfg.steps: linear warm-up over `warmup` steps, then constant
    or a cosine decay to `final_lr * lr` at the last step. A short run learns most per step
    with a high rate early and a low one late, when the noise of big steps would undo it."""
    scale = min(1.0, step / cfg.warmup) if cfg.warmup else 1.0
    if cfg.decay == "cosine":
        done = min(1.0, max(0, step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        scale *= cfg.final_lr + (1 - cfg.final_lr) * 0.5 * (1 + np.cos(np.pi * done))
    return float(cfg.lr * scale)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(name: str) -> torch.device:
    """The device called `name` (cpu, cuda or cuda:N) if this machine has it; a ValueError
    saying why not otherwise."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {name!r}: not a device name (cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: only cpu and cuda are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this machine has no CUDA GPU that PyTorch can use "
                         "(torch.cuda.is_available() is False); use cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


# ---------------------------------------------------------------- data order

@lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 0, epoch]).permutation(n)


def batch_indices(seed: int, step: int, batch_size: int, n: int) -> np.ndarray:
    """Dataset indices (batch_size,) of the batch at `step`: the step's slice of the stream of
    per-epoch permutations of 0..n-1, so every epoch visits every item once and any step's batch
    is known without replaying the steps before it."""
    pos = step * batch_size + np.arange(batch_size)
    epoch, offset = np.divmod(pos, n)
    out = np.empty(batch_size, dtype=np.int64)
    for e in np.unique(epoch):          # one or two epochs per batch (more only when n < batch)
        sel = epoch == e
        out[sel] = _epoch_permutation(seed, int(e), n)[offset[sel]]
    return out


class StepBatches(Sampler):
    """Batches of keys (step, slot, index) for steps start..stop-1 (see `batch_indices`), the
    indices drawn from 0..n-1, or from `pool` (indices, repeats allowed) when given. `share`
    keeps one rank's slice of each batch (`distributed.share`); slot stays the position in the
    whole batch, so an item is the same whichever rank reads it."""

    def __init__(self, seed: int, start: int, stop: int, batch_size: int, n: int,
                 pool: np.ndarray | None = None, share: slice = slice(None)):
        self.seed, self.start, self.stop, self.batch_size = seed, start, stop, batch_size
        self.pool = np.arange(n) if pool is None else np.asarray(pool)
        self.share = share

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        for step in range(self.start, self.stop):
            idx = self.pool[batch_indices(self.seed, step, self.batch_size, len(self.pool))]
            yield [(step, slot, int(i)) for slot, i in enumerate(idx)][self.share]


def grade_pool(grades: list[int], seed: int) -> np.ndarray:
    """Item indices in which every grade is as frequent as the commonest: each grade's items
    cycled (in a seeded order) up to that count. An epoch over the pool shows every item at
    least once and the three grades a third of the time each (real FMS grades are skewed:
    grade 2 is nearly half of the clips)."""
    grades = np.asarray(grades)
    rng = np.random.default_rng([seed, 3])
    groups = [np.flatnonzero(grades == g) for g in np.unique(grades)]
    most = max(len(idx) for idx in groups)
    return np.concatenate([np.resize(rng.permutation(idx), most) for idx in groups])


class ConditionedItems(Dataset):
    """A `MotionDataset` read by (step, slot, index) keys, with each caption conditioned on its
    clip's FMS grade and replaced by its row in the caption table.

    Items: motion (max_len, 263), length, text_id (row of the precomputed caption embeddings),
    grade (1..3, or 0 with no grades). The dataset's crop generator is reseeded from
    (seed, step, slot) per item, so an item does not depend on what was read before it. With
    `grade_drop` > 0 that share of the items comes without its grade (the plain caption, grade
    0) while keeping its text: what grade guidance needs as its grade-free branch.
    """

    def __init__(self, data: MotionDataset, seed: int, style: Style = STYLES["none"],
                 grades: dict[str, int] | None = None, grade_drop: float = 0.0):
        self.data, self.seed, self.style = data, seed, style
        self.grades = clip_grades(data, style, grades)
        self.grade_drop = grade_drop if self.grades is not None else 0.0
        self.text_ids: dict[str, int] = {}
        for caption in self.all_captions():
            self.text_ids.setdefault(caption, len(self.text_ids))

    def caption(self, text: str, clip: str, graded: bool = True) -> str:
        if self.grades is None or not graded:
            return text
        return self.style.condition(text, self.grades[clip])

    def all_captions(self) -> list[str]:
        """Every conditioned caption the items can carry, in a fixed order."""
        kinds = (True, False) if self.grade_drop else (True,)
        return list(dict.fromkeys(self.caption(c.text, item.clip, graded)
                                  for item in self.data.data.items for c in item.captions
                                  for graded in kinds))

    def clip_grade_list(self) -> list[int]:
        """The grade of every item, in item order (for `grade_pool`)."""
        return [self.grades[item.clip] for item in self.data.data.items]

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        step, slot, index = key
        rng = np.random.default_rng([self.seed, 1, step, slot])
        item = self.data.draw(index, rng)
        clip = self.data.data.items[index].clip
        graded = self.grades is not None and not (self.grade_drop and
                                                  rng.random() < self.grade_drop)
        return {"motion": item["motion"], "length": item["length"],
                "text_id": self.text_ids[self.caption(item["caption"], clip, graded)],
                "grade": self.grades[clip] if graded else 0}


def clip_grades(data: MotionDataset, style: Style, grades: dict[str, int] | None):
    """The grade of every clip of `data` (None for style `none`); a missing grade is an error
    naming the clips."""
    if style.name == "none":
        return None
    if grades is None:
        raise ValueError(f"conditioning style {style.name!r} needs grades: a dict clip name -> "
                         "FMS grade (the FMS corpus's fms_meta.json)")
    clips = sorted({item.clip for item in data.data.items})
    missing = [c for c in clips if c not in grades]
    if missing:
        raise ValueError(f"no FMS grade for {len(missing)} clip(s) of {data.data.root}: "
                         f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    return {c: check_grade(grades[c]) for c in clips}


def collate_items(batch: list[dict]) -> dict:
    """Stack `ConditionedItems`: motion (B, max_len, 263), mask (B, max_len) bool, length (B,),
    text_id (B,), grade (B,) long."""
    motion = torch.stack([b["motion"] for b in batch])
    length = torch.tensor([b["length"] for b in batch], dtype=torch.long)
    return {"motion": motion, "length": length,
            "mask": torch.arange(motion.shape[1])[None, :] < length[:, None],
            "text_id": torch.tensor([b["text_id"] for b in batch], dtype=torch.long),
            "grade": torch.tensor([b["grade"] for b in batch], dtype=torch.long)}


def _step_loader(items: ConditionedItems, cfg: TrainConfig, start: int,
                 share: slice) -> DataLoader:
    """The batches of the loop's steps start+1..cfg.steps (`StepBatches`, drawn from
    `grade_pool` with balance_grades), this rank's share of each, stacked by `collate_items`."""
    pool = grade_pool(items.clip_grade_list(), cfg.seed) if (
        cfg.balance_grades and items.grades is not None) else None
    return DataLoader(items, batch_sampler=StepBatches(cfg.seed, start, cfg.steps,
                                                       cfg.batch_size, len(items), pool, share),
                      collate_fn=collate_items, num_workers=cfg.num_workers,
                      # its own generator: creating the iterator must not draw from torch's
                      generator=torch.Generator().manual_seed(cfg.seed))


# ---------------------------------------------------------------- checkpoints

def checkpoint_path(run_dir, step: int) -> Path:
    return Path(run_dir) / f"ckpt_{step:09d}.pt"


def latest_checkpoint(run_dir) -> Path | None:
    """The checkpoint of the highest step in run_dir, or None."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("ckpt_*.pt")
             if (m := CHECKPOINT_RE.match(p.name))]
    return max(found)[1] if found else None


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by `train`; a missing, truncated or foreign file is an error
    naming it, and saying which earlier checkpoint beside it is intact, if one is."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        return _read_checkpoint(path)
    except ValueError as err:
        raise ValueError(f"{err}{_intact_earlier(path)}") from None


def _read_checkpoint(path: Path) -> dict:
    ckpt = atomic.torch_load(path, f"checkpoint {path} is truncated or corrupt")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an fmsnb checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def _intact_earlier(path: Path) -> str:
    """For the message about a bad checkpoint: the latest earlier one beside it that reads."""
    match = CHECKPOINT_RE.match(path.name)
    if match is None:
        return ""
    earlier = sorted(((int(m.group(1)), p) for p in path.parent.glob("ckpt_*.pt")
                      if (m := CHECKPOINT_RE.match(p.name))
                      and int(m.group(1)) < int(match.group(1))),
                     reverse=True)
    for _, candidate in earlier:
        try:
            _read_checkpoint(candidate)
        except ValueError:
            continue
        return (f"; the earlier checkpoint {candidate.name} is intact: move {path.name} out of "
                f"{path.parent} (e.g. rename it to {path.name}.bad) and run again, with "
                f"--resume to continue training from {candidate.name}")
    return ""


def config_differences(saved: dict, current: dict) -> list[str]:
    """'field: saved -> current' for every field where two config dicts differ."""
    return [f"{k}: {saved.get(k, '<missing>')!r} -> {current.get(k, '<missing>')!r}"
            for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def check_config(kind: str, saved: dict, current: dict, path, ignore=()) -> None:
    diff = [d for d in config_differences(saved, current) if d.split(":")[0] not in ignore]
    if diff:
        raise ValueError(f"checkpoint {path} was saved with another {kind} config; differing "
                         f"fields (checkpoint -> current): {'; '.join(diff)}. To train afresh "
                         f"with the current settings, move {Path(path).parent} aside")


def check_normalisation(ckpt: dict, dataset: MotionDataset, path) -> None:
    """The dataset must be normalised with the checkpoint's mean/std: a model trained on one
    normalisation reads any other as different motions. Fine-tuning data is therefore read
    with the pretraining corpus's statistics (`read_split(..., mean=, std=)`)."""
    for name, saved, current in (("mean", ckpt["mean"], dataset.mean),
                                 ("std", ckpt["std"], dataset.std)):
        if not np.array_equal(saved.numpy(), np.asarray(current, dtype=np.float32)):
            raise ValueError(f"checkpoint {path} was trained on data normalised with another "
                             f"{name}; read the dataset with the checkpoint's mean/std "
                             f"(read_split(..., mean=ckpt['mean'], std=ckpt['std']))")


def weights_of(ckpt: dict, ema: bool = True) -> dict:
    """A checkpoint's state dict: its EMA weights when it has them and ema=True. Checkpoints
    written before the model had a text gain computed with the identity, and get it."""
    weights = dict(ckpt["ema"] if ema and ckpt["ema"] is not None else ckpt["model"])
    if "text_gain" not in weights:
        weights["text_gain"] = torch.eye(ckpt["config"]["model"]["text_dim"])
    return weights


def load_model(path, device=None, ema: bool = True) -> tuple[MDM, GaussianDiffusion, dict]:
    """(model in eval mode, diffusion, checkpoint) rebuilt from a checkpoint's configuration;
    the EMA weights when the checkpoint has them and ema=True."""
    ckpt = load_checkpoint(path)
    model = MDM(MDMConfig(**ckpt["config"]["model"]))
    model.load_state_dict(weights_of(ckpt, ema))
    model.to(device or default_device()).eval()
    return model, GaussianDiffusion(DiffusionConfig(**ckpt["config"]["diffusion"])), ckpt


def _rng_state(group: distributed.Group) -> dict:
    """The global RNG states (the data order needs none: it is a function of seed and step).
    numpy's key array travels as a tensor so that the checkpoint loads with weights_only. The
    ranks of a data-parallel run keep alike streams (`batch_draws`); their CUDA entry is the
    state of the process's own GPU, the only one it draws from."""
    np_state = np.random.get_state()
    cuda = []
    if torch.cuda.is_available():
        cuda = [torch.cuda.get_rng_state()] if group.parallel else torch.cuda.get_rng_state_all()
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                      *map(float, np_state[2:])],
            "python": random.getstate()}


def _set_rng_state(state: dict, group: distributed.Group) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        if group.parallel:
            torch.cuda.set_rng_state(state["cuda"][0])
        else:
            torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    random.setstate(state["python"])


def _save_checkpoint(run_dir: Path, step: int, seconds: float, pending: list[torch.Tensor],
                     model: MDM, ema: MDM | None, optimizer, run_config: dict,
                     dataset: MotionDataset, group: distributed.Group) -> None:
    """Write run_dir's checkpoint of `step` atomically (`checkpoint_path`): the weights, their
    EMA, the optimiser, every RNG state, the losses of the log window still open (pending), the
    training seconds so far, the run's configuration and the dataset's normalisation: all that a
    resumed run needs to continue as the uninterrupted one would."""
    atomic.torch_save(
        {"format": CHECKPOINT_FORMAT, "step": step, "seconds": seconds,
         "pending_losses": torch.stack(pending).cpu() if pending else torch.empty(0),
         "model": model.state_dict(), "ema": ema.state_dict() if ema else None,
         "optimizer": optimizer.state_dict(), "rng": _rng_state(group), "config": run_config,
         "mean": torch.from_numpy(np.asarray(dataset.mean, dtype=np.float32)),
         "std": torch.from_numpy(np.asarray(dataset.std, dtype=np.float32))},
        checkpoint_path(run_dir, step))


# ---------------------------------------------------------------- the loop

def batch_draws(diffusion: GaussianDiffusion, model_cfg: MDMConfig, batch: int, frames: int,
                device) -> dict:
    """The random numbers of one training step on a batch of `batch` motions of `frames`
    frames: diffusion steps t (batch,), noise (batch, frames, n_feats) and condition dropout
    drop (batch,) bool, drawn from the global RNG in the order in which `GaussianDiffusion.loss`
    and `MDM.forward` draw them. A rank of a data-parallel run draws them for the whole batch
    and keeps its slice: each sample gets the numbers one process would give it, whatever the
    split, and every rank's stream stays alike."""
    t = torch.randint(0, diffusion.T, (batch,), device=device)
    noise = torch.randn(batch, frames, model_cfg.n_feats, device=device)
    drop = torch.rand(batch, device=device) < model_cfg.cond_drop_prob
    return {"t": t, "noise": noise, "drop": drop}


@contextmanager
def _own_dropout(group: distributed.Group, seed: int, step: int, device: torch.device):
    """In a data-parallel run, this rank's dropout masks come from a stream seeded by (seed,
    step, rank), and the shared stream is left as it was: ranks drawing them from alike streams
    would drop the same units of their different samples. In one process, nothing changes."""
    if not group.parallel:
        yield
        return
    gpus = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        own = int(np.random.default_rng([seed, 4, step, group.rank]).integers(2 ** 63))
        torch.default_generator.manual_seed(own)
        if gpus:
            torch.cuda.manual_seed(own)
        yield


CONDITION_LAYERS = ("text_proj.", "word_pool.", "grade_emb.")


def param_groups(model: MDM, cond_lr_scale: float = 1.0) -> list[dict]:
    """The optimiser's parameter groups: one, or with cond_lr_scale != 1 the layers that read
    the condition (caption projection, word pooling, grade embedding) apart, their learning
    rate scaled. A fine-tune must learn what a caption's grade means mostly in those layers,
    while the rest of the network already generates the movements."""
    params = dict(model.named_parameters())
    if cond_lr_scale == 1:
        return [{"params": list(params.values())}]
    cond = [n for n in params if n.startswith(CONDITION_LAYERS)]
    return [{"params": [params[n] for n in params if n not in cond], "lr_scale": 1.0},
            {"params": [params[n] for n in cond], "lr_scale": cond_lr_scale}]


def train_step(model, diffusion, optimizer, motion, mask, text, grade=None,
               grad_clip: float | None = None, draws: dict | None = None,
               bf16: bool = False) -> torch.Tensor:
    """One optimiser step on a batch: motion (B, T, 263), mask (B, T), text (B, text_dim),
    grade (B,) or None. draws: the batch's {t, noise, drop} (`batch_draws`); by default the
    loss draws them. bf16: the forward pass and the loss under bfloat16 autocast, the backward
    pass and the update in float32. Returns the detached loss."""
    with torch.autocast(motion.device.type, torch.bfloat16) if bf16 else nullcontext():
        loss = diffusion.loss(model, motion, mask, text, grade, **(draws or {}))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter; buffers copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def _read_log(path: Path, up_to: int | None = None) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [{"step": int(r["step"]), "loss": float(r["loss"]), "lr": float(r["lr"]),
                 "seconds": float(r["seconds"])} for r in csv.DictReader(f)]
    return [r for r in rows if up_to is None or r["step"] <= up_to]


def read_run(run_dir) -> tuple[dict[str, np.ndarray], dict]:
    """A trained model's record in run_dir: its loss log as columns (step, loss, lr, seconds),
    each an array with one entry per logged row, and its summary.json."""
    rows = _read_log(Path(run_dir) / LOSS_FILE)
    log = {key: np.array([r[key] for r in rows]) for key in LOSS_FIELDS}
    return log, json.loads((Path(run_dir) / SUMMARY_FILE).read_text())


def _write_log(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, LOSS_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, text.getvalue())


@contextmanager
def _loss_log(path: Path, write: bool):
    """A function that appends a row to the loss log and flushes it; one that does nothing
    when `write` is False (the ranks other than 0)."""
    if not write:
        yield lambda row: None
        return
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, LOSS_FIELDS)

        def append(row: dict) -> None:
            writer.writerow(row)
            f.flush()
        yield append


def _run_config(model, diffusion, cfg: TrainConfig, encoder, style: Style, init_from) -> dict:
    # The style by its name: a checkpoint holds no fmsnb object, so any version can read it.
    return {"model": asdict(model.cfg), "diffusion": asdict(diffusion.cfg), "train": asdict(cfg),
            "encoder": encoder.name, "encoder_key": encoder.key, "style": style.name,
            "init_from": None if init_from is None else str(init_from)}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, which the command line turns into one) during `train`; the message
    says where the last checkpoint is."""


@contextmanager
def _say_where_to_resume(run_dir: Path):
    try:
        yield
    except KeyboardInterrupt:
        last = latest_checkpoint(run_dir)
        where = (f"the last checkpoint is {last}; --resume (resume=True) continues from it"
                 if last else f"no checkpoint in {run_dir} yet: run again to start over")
        raise TrainingInterrupted(f"training interrupted: {where}") from None


def _check_request(model: MDM, cache, cfg: TrainConfig, style: Style, device: torch.device,
                   run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (run_dir's latest; None when it has none), once the model,
    the encoder, the device and the run folder are known to fit the request; ValueError
    otherwise, as for a run_dir that holds checkpoints without resume."""
    if style.grade_token and model.cfg.n_grades != 3:
        raise ValueError(f"style 'token' needs a model built with n_grades=3, got "
                         f"{model.cfg.n_grades}")
    if cache.encoder.dim != model.cfg.text_dim:
        raise ValueError(f"text encoder {cache.encoder.key} gives {cache.encoder.dim}-d "
                         f"embeddings but the model expects text_dim={model.cfg.text_dim}")
    if cfg.bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"bf16: the GPU {torch.cuda.get_device_name(device)} does not compute "
                         "in bfloat16; set bf16: false")
    latest = latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise ValueError(f"{run_dir} already holds checkpoints (latest {latest.name}); pass "
                         "resume=True to continue, or choose another run_dir")
    return latest


def _caption_table(items: ConditionedItems, cache, group: distributed.Group,
                   device: torch.device) -> torch.Tensor:
    """Every caption of `items` encoded once: (n_captions, text_dim) on `device`, row = the
    items' text_id. Rank 0 encodes and caches; the other ranks read its cache."""
    if len(items) == 0:
        raise ValueError(f"nothing to train on: the dataset read from {items.data.data.root} "
                         f"[{items.data.data.split}] has no items")
    captions = list(items.text_ids)
    with distributed.main_first(group):
        if not group.main:
            cache.reload()
        cache.precompute(captions)
    return cache.get(captions).to(device)


def _restore(latest: Path, model: MDM, optimizer, cfg: TrainConfig, run_config: dict,
             dataset: MotionDataset) -> dict:
    """Load a run's latest checkpoint into `model` and `optimizer` after checking that it was
    written by this run's settings (those a resume may change aside); returns it."""
    ckpt = load_checkpoint(latest)
    saved = ckpt["config"]
    check_config("model", saved["model"], run_config["model"], latest)
    check_config("diffusion", saved["diffusion"], run_config["diffusion"], latest)
    # A train-config field newer than the checkpoint had its default when it was written.
    check_config("train", {**asdict(TrainConfig()), **saved["train"]}, run_config["train"],
                 latest, RESUMABLE_CHANGES if cfg.decay == "none" else RESUMABLE_CHANGES[1:])
    run_keys = ("encoder", "encoder_key", "style")
    check_config("run", {k: saved[k] for k in run_keys},
                 {k: run_config[k] for k in run_keys}, latest)
    check_normalisation(ckpt, dataset, latest)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt["step"] > cfg.steps:
        raise ValueError(f"checkpoint {latest} is at step {ckpt['step']}, beyond the "
                         f"{cfg.steps} steps asked for")
    return ckpt


def _start_from(init_from, model: MDM, style: Style, run_config: dict,
                dataset: MotionDataset) -> None:
    """Fine-tuning's start: a pretrained checkpoint's weights (EMA if any) into `model`, whose
    config must equal the checkpoint's except a grade embedding the token style adds."""
    ckpt = load_checkpoint(init_from)
    growing_grades = style.grade_token and ckpt["config"]["model"].get("n_grades") == 0
    check_config("model", ckpt["config"]["model"], run_config["model"], init_from,
                 ("n_grades",) if growing_grades else ())
    check_config("diffusion", ckpt["config"]["diffusion"], run_config["diffusion"], init_from)
    check_normalisation(ckpt, dataset, init_from)
    result = model.load_state_dict(weights_of(ckpt), strict=not growing_grades)
    if result.unexpected_keys or any(not k.startswith("grade_emb.")
                                     for k in result.missing_keys):
        raise ValueError(f"checkpoint {init_from} does not fit the model: missing "
                         f"{result.missing_keys}, unexpected {result.unexpected_keys}")


def _start_state(model: MDM, optimizer, latest: Path | None, init_from, cfg: TrainConfig,
                 style: Style, run_config: dict, dataset: MotionDataset, table: torch.Tensor,
                 group: distributed.Group, device: torch.device):
    """Where the run starts: (the checkpoint it resumes from, or None; the EMA copy of `model`,
    or None without cfg.ema_decay). Resuming from `latest` restores the weights, the optimiser,
    the EMA and every RNG state. A fresh start takes init_from's weights when given, then sets
    the text gain from the caption table (n_captions, text_dim) and seeds the RNGs. The order
    is that of the random draws: changing it changes the weights a run ends with."""
    ckpt = None
    if latest is not None:
        ckpt = _restore(latest, model, optimizer, cfg, run_config, dataset)
    elif init_from is not None:
        _start_from(init_from, model, style, run_config, dataset)
    if ckpt is None:
        # Set once, before the first step; a resumed run reads it back with the weights.
        pooled = model.text_gain.shape[0]            # the per-token rows keep no gain
        set_text_gain(model, text_gain(table[:, :pooled].cpu(), cfg.text_gain_cap).to(device))
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
    ema = None if cfg.ema_decay is None else copy.deepcopy(model).requires_grad_(False)
    if ckpt is not None:
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        _set_rng_state(ckpt["rng"], group)
    return ckpt, ema


def _step_batch(batch: dict, model_cfg: MDMConfig, style: Style, group: distributed.Group,
                device: torch.device):
    """A loader batch as the step takes it: motion (B, T, F) and mask (B, T) on `device`, T
    cropped to the batch's longest clip when padding is masked, and the grades (B,) for the
    token style (else None)."""
    grade = batch["grade"].to(device) if style.grade_token else None
    motion, mask = batch["motion"], batch["mask"]
    if model_cfg.mask_padding:
        # Padding is masked out of attention and loss: frames past the batch's longest clip
        # change nothing but cost time, so they are dropped (on every rank past the longest of
        # the whole batch, as one process would).
        longest = distributed.maximum(int(batch["length"].max()), group, device)
        motion, mask = motion[:, :longest], mask[:, :longest]
    return motion.to(device), mask.to(device), grade


def _resumed_log(log_path: Path, ckpt: dict | None, cfg: TrainConfig, group: distributed.Group,
                 device: torch.device) -> tuple[list[dict], list[torch.Tensor]]:
    """The loss log's rows so far and the losses of the unfinished window, with the log file
    rewritten to them. A resumed log keeps the rows up to the checkpoint except a run-end row
    between two log_every steps: the losses of that window are pending in the checkpoint and
    go into the next regular row, as in an uninterrupted run. Rows written after it go."""
    rows, window = [], []
    if ckpt is not None:
        rows = [r for r in _read_log(log_path, up_to=ckpt["step"])
                if r["step"] % cfg.log_every == 0 or r["step"] < ckpt["step"]]
        window = list(ckpt["pending_losses"].to(device))
    distributed.barrier(group)              # every rank has read the log before it is rewritten
    if group.main:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _write_log(log_path, rows)
    return rows, window


def _write_summary(run_dir: Path, rows: list[dict], start: int, seconds_before: float,
                   run_config: dict, model: MDM, items: ConditionedItems, table: torch.Tensor,
                   device: torch.device, group: distributed.Group) -> None:
    """summary.json of a finished run: its steps, the step it resumed from, its final loss and
    training seconds (from the loss log's last row), its last checkpoint, where it ran, the
    model's size, the items and captions it trained on, and the run's configuration."""
    final = latest_checkpoint(run_dir)
    summary = {"steps": run_config["train"]["steps"], "resumed_from": start,
               "final_loss": rows[-1]["loss"] if rows else None,
               "seconds": rows[-1]["seconds"] if rows else seconds_before,
               "checkpoint": final.name if final else None,
               "device": str(device), "processes": group.size,
               "parameters": model.param_count(), "n_items": len(items),
               "n_captions": len(table), "config": run_config}
    atomic.write_text(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2))


def train(model: MDM, diffusion: GaussianDiffusion, dataset: MotionDataset, cache,
          cfg: TrainConfig, run_dir, resume: bool = False, style: Style = STYLES["none"],
          grades: dict[str, int] | None = None, init_from=None, device=None,
          progress: bool = True) -> list[dict]:
    """Train `model` on `dataset` for cfg.steps steps; returns the loss log (rows of loss.csv).

    dataset: a `MotionDataset` (normalised motions). cache: a `CaptionCache` of the model's text
    encoder; every caption is encoded before the first step. style: a `captions.Style`;
    all but `none` need `grades` (clip name -> FMS grade 1..3), and `token` needs a model with
    n_grades=3. run_dir receives ckpt_<step>.pt every cfg.checkpoint_every steps and at the end,
    loss.csv (step, loss, lr, seconds; the mean loss since the previous row) and summary.json.
    resume=True continues from run_dir's latest checkpoint (a fresh start when there is none);
    resume=False refuses a run_dir that already has checkpoints. init_from: a pretrained
    checkpoint whose weights (its EMA weights when it has them) start a fresh run with a fresh
    optimiser; its model config must equal the model's, except n_grades 0 -> 3 for the `token`
    style, whose new grade embedding keeps its initialisation. With resume=True a run_dir that
    has checkpoints resumes and init_from is not read again, so an interrupted fine-tuning
    continues with the same call.

    In a process group (`distributed.start`, under torchrun) every rank calls `train` alike
    with the same run_dir and trains on its slice of each step's batch (the number of processes
    must divide cfg.batch_size); the loss logged is the whole batch's, only rank 0 writes files,
    and any checkpoint resumes with any such number of processes, or with one.
    """
    run_dir = Path(run_dir)
    device = torch.device(device) if device is not None else default_device()
    group = distributed.current()
    share = distributed.share(cfg.batch_size, group)
    latest = _check_request(model, cache, cfg, style, device, run_dir, resume)
    items = ConditionedItems(dataset, cfg.seed, style, grades, cfg.grade_drop)
    table = _caption_table(items, cache, group, device)        # (n_captions, text_dim)

    model.to(device).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.cond_lr_scale), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    run_config = _run_config(model, diffusion, cfg, cache.encoder, style, init_from)
    ckpt, ema = _start_state(model, optimizer, latest, init_from, cfg, style, run_config,
                             dataset, table, group, device)
    start, seconds_before = (0, 0.0) if ckpt is None else (ckpt["step"], ckpt["seconds"])
    # Forward passes go through `net`; `model` holds the weights that the optimiser, the EMA and
    # the checkpoints read. Compiled first, then wrapped, as PyTorch advises for DDP.
    net = torch.compile(model) if cfg.compile else model
    if group.parallel:
        net = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    log_path = run_dir / LOSS_FILE
    rows, window = _resumed_log(log_path, ckpt, cfg, group, device)
    loader = _step_loader(items, cfg, start, share)

    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start, desc="training",
               disable=not progress or not group.main)
    with _loss_log(log_path, group.main) as append_row, _say_where_to_resume(run_dir):
        for step, batch in enumerate(loader, start=start + 1):
            motion, mask, grade = _step_batch(batch, model.cfg, style, group, device)
            draws = None
            if group.parallel:          # each sample's noise drawn as one process would
                whole = batch_draws(diffusion, model.cfg, cfg.batch_size, motion.shape[1], device)
                draws = {k: v[share] for k, v in whole.items()}
            lr = lr_at(cfg, step)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr * param_group.get("lr_scale", 1.0)
            with _own_dropout(group, cfg.seed, step, device):
                loss = train_step(net, diffusion, optimizer, motion, mask,
                                  table[batch["text_id"].to(device)], grade, cfg.grad_clip,
                                  draws, cfg.bf16)
            loss = distributed.mean(loss, group)      # the whole batch's, alike on every rank
            if ema is not None:
                update_ema(ema, model, cfg.ema_decay)
            window.append(loss)
            elapsed = seconds_before + time.perf_counter() - t0
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {"step": step, "loss": torch.stack(window).mean().item(), "lr": lr,
                       "seconds": round(elapsed, 3)}
                append_row(row)
                rows.append(row)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
                if step % cfg.log_every == 0:
                    window = []
            if group.main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                _save_checkpoint(run_dir, step, elapsed, window, model, ema, optimizer,
                                 run_config, dataset, group)
            bar.update(1)
    bar.close()

    if group.main:
        _write_summary(run_dir, rows, start, seconds_before, run_config, model, items, table,
                       device, group)
    distributed.barrier(group)              # every rank returns once the run's files are whole
    return rows
