"""The device check: how fast one device trains and samples a profile's model, and what the
profile's whole schedule would take on it.

`python -m fmsnb device-check --profile full --device cuda --steps 20` builds the profile's MDM
(random weights: the speed does not depend on them) and times on the device, after one untimed
warm-up step each (compilation, memory allocation, kernel choice): training steps at the
profile's pretraining and fine-tuning batch sizes and at MDM's 64, with the profile's bf16 and
compile switches; and denoising steps of both samplers, MDM's ancestral `ddpm` and `ddim`, with
classifier-free guidance on a batch of `sampling.batch_size` motions on the model's max_len
canvas. Inputs are random normalised motions and random caption embeddings of the profile's
encoder width (training reads cached embeddings, so the encoder is not in the loop). The
schedule's wall time is extrapolated linearly, each stage's steps times its median seconds per
step, which holds because every step of a stage does the same work: pretraining, fine-tuning
once per style, and sampling the motions that `performance.sampled_motions` counts with the
profile's sampler. What it leaves out: data loading (the loop's is light), checkpoints, the
evaluator and the classifiers, and, on several GPUs, the gradient all-reduce. The result is
printed and written as JSON; it measures one machine and no test asserts its numbers.
"""
from __future__ import annotations

import datetime
import json
import platform
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from fmsnb import atomic, sample
from fmsnb.config import Profile
from fmsnb.diffusion import GaussianDiffusion, guided
from fmsnb.mdm import MDM
from fmsnb.publish.performance import readable_duration, sampled_motions
from fmsnb.stages import model_config
from fmsnb.text import encoder_dim
from fmsnb.train import train_step

WARMUP = 1              # untimed steps before each measurement
MDM_BATCH = 64          # MDM's released training batch
SAMPLERS = ("ddpm", "ddim")


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that the clock measures it (GPUs run async)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(n: int, frames: int, n_feats: int, text_dim: int, rng: np.random.Generator,
            device: torch.device):
    """Random normalised motions (n, frames, n_feats), mask (n, frames) for lengths drawn in
    40..frames, and caption embeddings (n, text_dim), on the device."""
    lengths = rng.integers(min(40, frames), frames + 1, n)
    mask = torch.from_numpy(np.arange(frames)[None, :] < lengths[:, None])
    motion = torch.from_numpy(rng.normal(size=(n, frames, n_feats)).astype(np.float32))
    text = torch.from_numpy(rng.normal(size=(n, text_dim)).astype(np.float32))
    return (motion * mask[..., None]).to(device), mask.to(device), text.to(device)


def _stats(seconds: list[float]) -> dict:
    return {"median": float(np.median(seconds)), "min": float(np.min(seconds)),
            "all": [float(s) for s in seconds]}


def time_training(model: MDM, diffusion: GaussianDiffusion, cfg: Profile, batch: int,
                  steps: int, device: torch.device, progress: bool) -> dict:
    """Seconds per training step of `model` at `batch` motions: the loop's own `train_step`,
    with the pretraining settings' optimiser and bf16/compile switches, the batch cropped to
    its longest motion when padding is masked, as the loop does."""
    train = cfg.pretrain
    rng = np.random.default_rng([cfg.seed, batch])
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    net = torch.compile(model) if train.compile else model
    model.train()
    seconds = []
    for i in tqdm(range(WARMUP + steps), desc=f"training, batch {batch}", disable=not progress):
        motion, mask, text = _inputs(batch, model.cfg.max_len, model.cfg.n_feats,
                                     model.cfg.text_dim, rng, device)
        if model.cfg.mask_padding:
            longest = int(mask.sum(1).max())
            motion, mask = motion[:, :longest], mask[:, :longest]
        _sync(device)
        t0 = time.perf_counter()
        train_step(net, diffusion, optimizer, motion, mask, text, bf16=train.bf16)
        _sync(device)
        if i >= WARMUP:
            seconds.append(time.perf_counter() - t0)
    per_step = _stats(seconds)
    return {"batch_size": batch, "frames": model.cfg.max_len, "steps_timed": steps,
            "warmup_steps": WARMUP, "seconds_per_step": per_step,
            "steps_per_second": 1.0 / per_step["median"],
            "samples_per_second": batch / per_step["median"]}


@torch.no_grad()
def time_sampler(model: MDM, diffusion: GaussianDiffusion, cfg: Profile, sampler: str,
                 steps: int, device: torch.device, progress: bool) -> dict:
    """Seconds per denoising step of `sampler` on `sampling.batch_size` motions of max_len
    frames (guided: conditional and unconditional halves in one forward pass, then the
    sampler's update), and per motion over the sampler's whole run."""
    n, s = cfg.sampling.batch_size, cfg.sampling
    timesteps = sample.timesteps(diffusion, sampler, s.steps)
    rng = np.random.default_rng([cfg.seed, len(timesteps)])
    x, mask, text = _inputs(n, model.cfg.max_len, model.cfg.n_feats, model.cfg.text_dim, rng,
                            device)
    model.eval()
    seconds = []
    for i in tqdm(range(WARMUP + steps), desc=f"sampling ({sampler})", disable=not progress):
        j = i % len(timesteps)          # more timed steps than the sampler has: wrap around
        t = timesteps[j]
        _sync(device)
        t0 = time.perf_counter()
        x0 = guided(model, x, torch.full((n,), t, dtype=torch.long, device=device), text, mask,
                    scale=s.guidance)
        noise = torch.randn(x.shape, device=device)
        if sampler == "ddpm":
            x = diffusion.ddpm_step(x0, x, t, noise)
        else:
            t_prev = timesteps[j + 1] if j + 1 < len(timesteps) else -1
            x = diffusion.ddim_step(x0, x, t, t_prev, 0.0, noise)
        _sync(device)
        if i >= WARMUP:
            seconds.append(time.perf_counter() - t0)
    per_step = _stats(seconds)
    run = per_step["median"] * len(timesteps)
    return {"sampler": sampler, "denoising_steps": len(timesteps), "motions": n,
            "frames": model.cfg.max_len, "guidance": s.guidance, "steps_timed": steps,
            "warmup_steps": WARMUP, "seconds_per_step": per_step,
            "steps_per_second": 1.0 / per_step["median"], "seconds_per_batch": run,
            "seconds_per_motion": run / n}


def schedule(cfg: Profile, training: dict[int, dict], sampling: dict[str, dict]) -> dict:
    """The profile's wall time on the device, extrapolated from the timings (seconds): the
    pretraining steps, the fine-tuning steps of every style, the sampled motions."""
    def train_seconds(train) -> float:
        return train.steps * training[train.batch_size]["seconds_per_step"]["median"]
    motions = sampled_motions(cfg)["total"]
    per_style = train_seconds(cfg.finetune)
    out = {"pretrain_steps": cfg.pretrain.steps, "pretrain": train_seconds(cfg.pretrain),
           "finetune_steps_per_style": cfg.finetune.steps, "styles": len(cfg.styles),
           "finetune_per_style": per_style, "finetune": per_style * len(cfg.styles),
           "sampler": cfg.sampling.sampler, "sampled_motions": motions,
           "sampling": motions * sampling[cfg.sampling.sampler]["seconds_per_motion"]}
    out["training"] = out["pretrain"] + out["finetune"]
    out["total"] = out["training"] + out["sampling"]
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def run_check(cfg: Profile, device, steps: int, out_path, batches=(),
              progress: bool = True) -> dict:
    """Time training (the profile's batch sizes, MDM's 64 and `batches`) and both samplers on
    `device`, `steps` timed steps each; extrapolate the schedule (`schedule`); write the JSON
    to out_path and return it."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = torch.device(device)
    text_dim = encoder_dim(cfg.text.encoder, cfg.text.side_words, cfg.text.words)
    torch.manual_seed(cfg.seed)
    model = MDM(model_config(cfg, text_dim)).to(device)
    diffusion = GaussianDiffusion(cfg.diffusion)
    sizes = sorted({cfg.pretrain.batch_size, cfg.finetune.batch_size, MDM_BATCH, *batches})
    training = {b: time_training(model, diffusion, cfg, b, steps, device, progress)
                for b in sizes}
    sampling = {name: time_sampler(model, diffusion, cfg, name, steps, device, progress)
                for name in SAMPLERS}
    result = {
        "profile": cfg.name, "device": str(device), "device_name": device_name(device),
        "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "bf16": cfg.pretrain.bf16, "compile": cfg.pretrain.compile,
        "parameters": model.param_count(), "model": {"latent_dim": model.cfg.latent_dim,
                                                     "layers": model.cfg.layers,
                                                     "text_dim": text_dim,
                                                     "max_len": model.cfg.max_len},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "training": [training[b] for b in sizes], "sampling": [sampling[s] for s in SAMPLERS],
        "schedule_seconds": schedule(cfg, training, sampling),
        "method": "median seconds per step after a warm-up step, times the steps of each stage "
                  "(linear extrapolation); data loading, checkpoints, the evaluator, the "
                  "classifiers and multi-GPU communication are not counted",
    }
    atomic.write_text(out_path, json.dumps(result, indent=2))
    return result


def report(result: dict) -> list[str]:
    """The check as lines for the terminal."""
    lines = [f"{result['device']} ({result['device_name']}), torch {result['torch_version']}, "
             f"bf16 {'on' if result['bf16'] else 'off'}, compile "
             f"{'on' if result['compile'] else 'off'}, {result['parameters']:,} parameters"]
    for t in result["training"]:
        lines.append(f"training, batch {t['batch_size']}: {t['steps_per_second']:.2f} steps/s "
                     f"({t['seconds_per_step']['median']:.4f} s per step)")
    for s in result["sampling"]:
        lines.append(f"sampling, {s['sampler']} ({s['denoising_steps']} steps, batch "
                     f"{s['motions']}): {s['steps_per_second']:.2f} steps/s, "
                     f"{s['seconds_per_motion']:.3f} s per motion")
    e = result["schedule_seconds"]
    lines.append(
        f"the {result['profile']} profile on this device: pretraining {e['pretrain_steps']:,} "
        f"steps {readable_duration(e['pretrain'])}, fine-tuning {e['styles']} x "
        f"{e['finetune_steps_per_style']:,} steps {readable_duration(e['finetune'])}, sampling "
        f"{e['sampled_motions']:,} motions ({e['sampler']}) {readable_duration(e['sampling'])}; "
        f"total {readable_duration(e['total'])}")
    return lines
