"""The performance benchmark: what caching caption embeddings and batched DDIM guidance buy.

One run on one machine (on the CPU) and one model size measures two things against MDM's
released way of working. (a) Training throughput (samples/s) when caption embeddings come from
the cache versus re-encoding the batch's captions at every step, as MDM does. (b) Sampling wall
time per motion: MDM's 1000-step ancestral sampler that evaluates the conditional and
unconditional predictions in two separate forward passes and encodes the captions inside each
of them, versus our DDIM sampler (50 steps) with both guidance halves in one batched forward and
the captions encoded once. MDM's side encodes with MDM's encoder, CLIP ViT-B/32's text tower:
with its real weights when given, else the same architecture with random weights, which costs
the same time (the JSON says which); training is also timed re-encoding with our own encoder,
so that the gain of caching alone is on record too. MDM's 1000 steps are timed on a subset
(`mdm_steps_timed`) and extrapolated linearly, which holds because every step does the same
work; the JSON says so. Each timing is repeated and the fastest repeat, the least disturbed by
other processes, gives the speedups (medians are kept beside). Motions are random normalised
features: speed does not depend on what the motion is. The numbers are measurements for the
report, never asserted by a test.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fmsnb.captions import movement_captions
from fmsnb.config import BenchConfig, DiffusionConfig
from fmsnb.diffusion import GaussianDiffusion
from fmsnb.fms import MOVEMENTS
from fmsnb.mdm import MDM
from fmsnb.sample import generate
from fmsnb.text import CaptionCache, ClipEncoder, load_encoder, random_clip_encoder
from fmsnb.train import train_step


# The result's layout; 2 added the one-thread training step (`cached_one_thread`).
FORMAT = 2


def bench_captions() -> list[str]:
    """The project's real captions (every FMS movement's paraphrases) as the caption pool."""
    return [c for code in MOVEMENTS for c in movement_captions(code)]


def _batch(n: int, frames: int, rng: np.random.Generator, pool: list[str], n_feats: int):
    """Random normalised motions (n, frames, F), mask (n, frames) with lengths in 40..frames,
    and n captions drawn from the pool."""
    lengths = rng.integers(min(40, frames), frames + 1, n)
    mask = torch.from_numpy(np.arange(frames)[None, :] < lengths[:, None])
    motion = torch.from_numpy(rng.normal(size=(n, frames, n_feats)).astype(np.float32))
    motion = motion * mask[..., None]
    return motion, mask, [pool[i] for i in rng.integers(len(pool), size=n)]


def _stats(seconds: list[float]) -> dict:
    return {"min": float(np.min(seconds)), "median": float(np.median(seconds)),
            "all": [float(x) for x in seconds]}


def bench_training(models: dict, diffusion, encoders: dict, cfg: BenchConfig, pool: list[str],
                   progress: bool) -> dict:
    """Seconds per training step (embedding included): `cached` (our model, our encoder's
    embeddings from the cache), `cached_one_thread` (the same with one torch thread, as each
    of `stages.finetune_styles`'s processes trains), `reencoded` (MDM's encoder at every step,
    as MDM trains) and `reencoded_same_encoder` (our encoder at every step). The variants
    alternate step by step so that changes in machine load hit all of them."""
    rng = np.random.default_rng(cfg.seed)
    cache = CaptionCache(encoders["ours"])
    cache.precompute(pool)
    threads = torch.get_num_threads()
    # name -> (model, embedding, torch threads)
    variants = {"cached": ("ours", cache.get, threads), "cached_one_thread": ("ours", cache.get, 1),
                "reencoded": ("mdm", encoders["mdm"].encode, threads),
                "reencoded_same_encoder": ("ours", encoders["ours"].encode, threads)}
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    for m in models.values():
        m.train()
    times = {k: [] for k in variants}
    try:
        for i in tqdm(range(cfg.train_steps + 1), desc="bench training", disable=not progress):
            for name, (which, embed, n_threads) in variants.items():
                torch.set_num_threads(n_threads)
                motion, mask, captions = _batch(cfg.batch_size, cfg.train_frames, rng, pool,
                                                cfg.model.n_feats)
                t0 = time.perf_counter()
                train_step(models[which], diffusion, optimizers[which], motion, mask,
                           embed(captions))
                if i > 0:                              # step 0 warms up every variant
                    times[name].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    per_step = {k: _stats(v) for k, v in times.items()}
    return {"batch_size": cfg.batch_size, "frames": cfg.train_frames,
            "steps_timed": cfg.train_steps, "warmup_steps": 1, "seconds_per_step": per_step,
            "samples_per_second": {k: cfg.batch_size / v["min"] for k, v in per_step.items()}}


@torch.no_grad()
def mdm_step_seconds(model, diffusion, encoder, captions: list[str], mask: torch.Tensor,
                     cfg: BenchConfig, progress: bool) -> list[float]:
    """Wall time of each of the first `mdm_steps_timed` steps of MDM's released sampling loop:
    a conditional and an unconditional forward pass, each encoding the captions first (MDM's
    forward encodes its text input), guidance, then an ancestral posterior step."""
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed)
    shape = (*mask.shape, cfg.model.n_feats)
    x = torch.randn(shape, generator=generator)
    keep = torch.zeros(len(captions), dtype=torch.bool)       # drop nothing: conditional
    seconds = []
    for t in tqdm(range(diffusion.T - 1, diffusion.T - 1 - cfg.mdm_steps_timed, -1),
                  desc="bench MDM sampling", disable=not progress):
        t0 = time.perf_counter()
        tt = torch.full((len(captions),), t, dtype=torch.long)
        out_cond = model(x, tt, encoder.encode(captions), mask, drop=keep)
        out_uncond = model(x, tt, encoder.encode(captions), mask, drop=~keep)
        x0 = out_uncond + cfg.guidance * (out_cond - out_uncond)
        x = diffusion.ddpm_step(x0, x, t, torch.randn(shape, generator=generator))
        seconds.append(time.perf_counter() - t0)
    return seconds


def bench_sampling(models: dict, diffusion, encoders: dict, cfg: BenchConfig, pool: list[str],
                   progress: bool) -> dict:
    """Seconds per motion: MDM's 1000-step sampler with its encoder (timed subset,
    extrapolated) versus ours."""
    rng = np.random.default_rng(cfg.seed + 1)
    captions = [pool[i] for i in rng.integers(len(pool), size=cfg.n_motions)]
    lengths = [cfg.sample_frames] * cfg.n_motions
    mask = torch.ones(cfg.n_motions, cfg.sample_frames, dtype=torch.bool)
    model, encoder = models["ours"], encoders["ours"]
    model.eval()
    mean, std = np.zeros(cfg.model.n_feats), np.ones(cfg.model.n_feats)
    # Warm-up of both paths (allocator, thread pools) on a throw-away call.
    generate(model, diffusion, CaptionCache(encoder), captions[:1], lengths[:1], steps=1,
             guidance=cfg.guidance, mean=mean, std=std, progress=False)
    mdm = _stats(mdm_step_seconds(models["mdm"], diffusion, encoders["mdm"], captions, mask, cfg,
                                  progress))
    ours = []
    for _ in range(cfg.repeats):
        t0 = time.perf_counter()
        generate(model, diffusion, CaptionCache(encoder), captions, lengths,
                 guidance=cfg.guidance, sampler="ddim", steps=cfg.ddim_steps, mean=mean, std=std,
                 seed=cfg.seed, batch_size=cfg.n_motions, progress=progress)
        ours.append(time.perf_counter() - t0)
    ours = _stats(ours)
    n = cfg.n_motions
    return {
        "n_motions": n, "frames": cfg.sample_frames, "guidance": cfg.guidance,
        "mdm": {"sampler": "ancestral (ddpm)", "steps": cfg.mdm_steps,
                "steps_timed": cfg.mdm_steps_timed, "seconds_per_step": mdm,
                "seconds_per_motion": {k: mdm[k] * cfg.mdm_steps / n for k in ("min", "median")},
                "note": f"{cfg.mdm_steps_timed} of {cfg.mdm_steps} steps timed one by one; a "
                        f"step's time times {cfg.mdm_steps} extrapolates linearly to the whole "
                        "run. Separate cond and uncond forward passes, captions encoded inside "
                        "each forward pass, as in MDM's released sampler"},
        "ours": {"sampler": "ddim", "steps": cfg.ddim_steps, "repeats": cfg.repeats,
                 "seconds_per_run": ours,
                 "seconds_per_motion": {k: ours[k] / n for k in ("min", "median")},
                 "note": "whole runs timed; cond and uncond in one batched forward; captions "
                         "encoded once per run (fresh cache, encoding included)"},
    }


def run_bench(cfg: BenchConfig, out_path, encoder=None, mdm_encoder=None,
              progress: bool = True) -> dict:
    """Measure (a) training and (b) sampling speed, write them as JSON to out_path, return them.

    encoder: our loaded text encoder (default: `load_encoder(cfg.encoder)`); mdm_encoder: the
    one MDM's way re-encodes with (default: CLIP ViT-B/32, real weights from cfg.clip_weights or
    random ones). Each side's model takes its encoder's text_dim; everything else is equal. Keys: training_speedup, sampling_speedup, training, sampling,
    model, parameters, batch sizes, device, torch_threads, date.
    """
    encoder = encoder if encoder is not None else load_encoder(cfg.encoder)
    if mdm_encoder is None:
        mdm_encoder = (load_encoder("clip", cfg.clip_weights) if cfg.clip_weights
                       else random_clip_encoder())
    mdm_text = ("CLIP ViT-B/32 text tower, real weights" if cfg.clip_weights else
                "CLIP ViT-B/32 text tower with random weights (same architecture and cost; "
                "the real weights cannot be downloaded here)") \
        if isinstance(mdm_encoder, ClipEncoder) else mdm_encoder.key
    cfg = replace(cfg, model=replace(cfg.model, text_dim=encoder.dim))
    if not 1 <= cfg.mdm_steps_timed <= cfg.mdm_steps:
        raise ValueError(f"mdm_steps_timed must be in 1..{cfg.mdm_steps}, got "
                         f"{cfg.mdm_steps_timed}")
    torch.manual_seed(cfg.seed)
    models = {"ours": MDM(cfg.model),
              "mdm": MDM(replace(cfg.model, text_dim=mdm_encoder.dim))}
    encoders = {"ours": encoder, "mdm": mdm_encoder}
    diffusion = GaussianDiffusion(DiffusionConfig(steps=cfg.mdm_steps))
    pool = bench_captions()
    load_before = os.getloadavg()
    training = bench_training(models, diffusion, encoders, cfg, pool, progress)
    sampling = bench_sampling(models, diffusion, encoders, cfg, pool, progress)
    steps, mdm, ours = (training["seconds_per_step"], sampling["mdm"]["seconds_per_motion"],
                        sampling["ours"]["seconds_per_motion"])
    result = {
        "format": FORMAT,
        "training_speedup": steps["reencoded"]["min"] / steps["cached"]["min"],
        "sampling_speedup": mdm["min"] / ours["min"],
        "training_speedup_median": steps["reencoded"]["median"] / steps["cached"]["median"],
        "training_speedup_same_encoder": steps["reencoded_same_encoder"]["min"]
        / steps["cached"]["min"],
        "sampling_speedup_median": mdm["median"] / ours["median"],
        "timing": "wall clock; each timing is repeated (training steps, MDM sampling steps, "
                  "whole DDIM runs) and the speedups use the fastest repeat, the one least "
                  "disturbed by other processes on the machine; *_median beside",
        "training": training, "sampling": sampling,
        "model": asdict(cfg.model), "parameters": models["ours"].param_count(),
        "encoder": encoder.key, "mdm_encoder": mdm_text, "batch_size": cfg.batch_size, "n_motions": cfg.n_motions,
        "device": "cpu", "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        # Other processes on the machine slow both sides; the 1-minute load tells how busy it was.
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "config": asdict(cfg),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2))
    return result


def load_or_run(cfg: BenchConfig, path, encoder=None, progress: bool = True) -> dict:
    """The benchmark JSON at `path` when it was measured with these settings, else a new run.

    The model's text_dim is set by the encoder at run time, so it is left out of the match; a
    result of another FORMAT (measured by an older version, without today's keys) is measured
    again.
    """
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        wanted = asdict(cfg)
        wanted["model"]["text_dim"] = saved["config"]["model"]["text_dim"]
        if saved.get("format") == FORMAT and saved["config"] == wanted:
            return saved
    return run_bench(cfg, path, encoder=encoder, progress=progress)
