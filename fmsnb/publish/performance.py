"""What the book's performance chapter reports: the benchmark as a table, each chapter's wall time,
and an estimate of what a profile (the `full` one above all) costs on this machine and on a GPU.

The benchmark itself is `fmsnb.publish.bench` (chapter 03 writes `runs/<profile>/bench.json`); here
its JSON becomes rows to show. Chapter wall times come from the executed copies in
`book/notebooks/`, where papermill records each notebook's parameters and duration and each cell's
duration. The cost of a profile is an estimate, not a measurement: the floating-point operations
(FLOPs) of one training step and of one sampling step at the profile's model size are counted
exactly, by running the model on PyTorch's meta device (shapes only, no arithmetic) under its FLOP
counter; this machine's rate is the benchmark's measured training step divided into that step's
counted FLOPs; a GPU's rate is an assumption (`GPU`), stated wherever the estimate is shown. And
the speed of the book's DDIM sampler is weighed against its quality: `sampler_quality` scores the
base model's motions from DDIM and from MDM's 1000-step ancestral sampler on the same captions.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from fmsnb import corpora, stages, t2m_protocol, table1
from fmsnb.config import MDMConfig, Profile
from fmsnb.dataset import MAX_LEN, read_split
from fmsnb.fms import GRADES, MOVEMENTS
from fmsnb.mdm import MDM
from fmsnb.sample import step_count


@dataclass(frozen=True)
class GPUAssumption:
    """A GPU's sustained rate on this workload: its fp32 peak times an assumed utilisation."""
    name: str
    peak_tflops: float
    utilisation: float

    @property
    def flops_per_second(self) -> float:
        return self.peak_tflops * 1e12 * self.utilisation


# Colab's free GPU. Peak fp32 8.1 TFLOP/s (NVIDIA's data sheet); small matrices (batch 8 of
# 197 tokens of 512) keep it far from peak, so we assume 30% (an assumption, not a measurement).
GPU = GPUAssumption("NVIDIA T4 (Colab's free GPU)", peak_tflops=8.1, utilisation=0.3)


def markdown_table(rows: list[dict]) -> str:
    """Rows of one set of keys as a markdown table, the keys as its header, in order."""
    if not rows:
        raise ValueError("no rows to tabulate")
    header = list(rows[0])
    if any(list(r) != header for r in rows):
        raise ValueError(f"every row must have the keys {header}")

    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line("---" for _ in header),
                      *(line(r.values()) for r in rows)])


def bench_rows(result: dict) -> list[dict]:
    """The benchmark JSON of `fmsnb.publish.bench.run_bench` as table rows {measure, MDM's way,
    ours, speedup}: training throughput against MDM's way (CLIP re-encoding every step) and against
    re-encoding with our own encoder, sampling time per motion, then the setting it ran in."""
    train, sample = result["training"], result["sampling"]
    sps, mdm, ours = train["samples_per_second"], sample["mdm"], sample["ours"]
    model = result["model"]
    return [
        {"measure": f"training, samples/s (batch {train['batch_size']}, {train['frames']} "
                    f"frames, {train['steps_timed']} timed steps)",
         "MDM's way": f"{sps['reencoded']:.1f} (captions re-encoded every step)",
         "ours": f"{sps['cached']:.1f} (cached caption embeddings)",
         "speedup": f"{result['training_speedup']:.2f}x"},
        {"measure": f"training, samples/s, both ways with {result['encoder']}",
         "MDM's way": f"{sps['reencoded_same_encoder']:.1f} (captions re-encoded every step)",
         "ours": f"{sps['cached']:.1f} (cached caption embeddings)",
         "speedup": f"{result['training_speedup_same_encoder']:.2f}x"},
        {"measure": f"sampling, s per motion ({sample['n_motions']} motions of "
                    f"{sample['frames']} frames, guidance {sample['guidance']})",
         "MDM's way": f"{mdm['seconds_per_motion']['min']:.3f} ({mdm['steps']}-step "
                      f"{mdm['sampler']}, {mdm['steps_timed']} steps timed and extrapolated)",
         "ours": f"{ours['seconds_per_motion']['min']:.3f} ({ours['steps']}-step "
                 f"{ours['sampler']}, whole runs timed)",
         "speedup": f"{result['sampling_speedup']:.1f}x"},
        {"measure": "model", "MDM's way": "same",
         "ours": f"MDM, latent {model['latent_dim']}, {model['layers']} layers, "
                 f"{model['heads']} heads, {result['parameters']:,} parameters",
         "speedup": ""},
        {"measure": "machine", "MDM's way": "same",
         "ours": f"{result['device']} ({result['cpu']}), {result['torch_threads']} torch "
                 f"threads, load {result['load_average_1min']['before']:.1f} before / "
                 f"{result['load_average_1min']['after']:.1f} after, text encoder "
                 f"{result['encoder']}",
         "speedup": ""},
    ]


@dataclass
class ChapterTime:
    """One executed chapter's run as papermill recorded it."""
    name: str
    profile: str | None
    seconds: float
    slowest_cell: int            # index of the slowest cell in the executed notebook
    slowest_seconds: float
    finished: str                # papermill's end time (ISO 8601)


def chapter_times(executed_dir: str | Path, names: list[str]) -> list[ChapterTime]:
    """Wall times of the executed chapters `names` in `executed_dir` (book/notebooks/), in the
    given order, from papermill's metadata; a chapter without a finished run there is left out."""
    times = []
    for name in names:
        path = Path(executed_dir) / f"{name}.ipynb"
        if not path.is_file():
            continue
        try:
            notebook = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a notebook ({err})") from err
        run = notebook.get("metadata", {}).get("papermill", {})
        if run.get("duration") is None or run.get("exception"):
            continue
        cells = [c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
                 for c in notebook.get("cells", [])] or [0.0]
        slowest = max(range(len(cells)), key=cells.__getitem__)
        times.append(ChapterTime(name, run.get("parameters", {}).get("profile"),
                                 float(run["duration"]), slowest, float(cells[slowest]),
                                 str(run.get("end_time"))))
    return times


def chapter_rows(times: list[ChapterTime]) -> list[dict]:
    """Chapter wall times as table rows {chapter, wall time, slowest cell, finished}."""
    return [{"chapter": t.name, "wall time": f"{t.seconds:.1f} s",
             "slowest cell": f"cell {t.slowest_cell}, {t.slowest_seconds:.1f} s",
             "finished": t.finished[:19].replace("T", " ")} for t in times]


def _flops(model: MDMConfig, batch: int, frames: int, train: bool) -> float:
    """FLOPs of one forward pass (and, with `train`, its backward pass) of MDM on a batch of
    `batch` motions of `frames` frames, counted on the meta device, where nothing is computed."""
    with torch.device("meta"):
        net = MDM(model)
        x = torch.zeros(batch, frames, model.n_feats)
        t = torch.zeros(batch, dtype=torch.long)
        text = torch.zeros(batch, model.text_dim)
        mask = torch.ones(batch, frames, dtype=torch.bool)
    net.train(train)
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(train):
        out = net(x, t, text, mask)
        if train:
            out.square().mean().backward()
    return float(counter.get_total_flops())


def training_step_flops(model: MDMConfig, batch: int, frames: int = MAX_LEN) -> float:
    """FLOPs of one training step's forward and backward pass (the optimiser's update is a few
    operations per parameter, negligible beside them)."""
    return _flops(model, batch, frames, train=True)


def sampling_step_flops(model: MDMConfig, frames: int = MAX_LEN) -> float:
    """FLOPs of one denoising step for one motion with classifier-free guidance: the conditional
    and the unconditional prediction (two forward passes' worth, batched or not)."""
    return _flops(model, 2, frames, train=False)


def sampled_motions(cfg: Profile) -> dict[str, int]:
    """Motions a run of the profile samples, per model and over all models (the base model and
    one per fine-tuning style): the T2M evaluation's replications of test samples plus its
    multimodality generations (at most 5 replications of them, as `fmsnb.t2m_protocol` runs), and
    the classification chapter's generated FMS set (15 movements x 3 grades x
    `generation.per_cell`)."""
    ev = cfg.evaluation
    t2m = ev.replications * ev.samples + min(ev.replications, 5) * ev.mm_captions * ev.mm_repeats
    fms_set = len(MOVEMENTS) * len(GRADES) * cfg.generation.per_cell
    models = 1 + len(cfg.styles)
    return {"t2m_per_model": t2m, "fms_per_model": fms_set, "models": models,
            "total": models * (t2m + fms_set)}


def estimate_cost(cfg: Profile, bench: dict, gpu: GPUAssumption = GPU) -> dict:
    """What running profile `cfg` costs in training steps, sampled motions and FLOPs, and an
    estimate of the time on this machine (at the rate the benchmark measured here) and on `gpu`
    (at its assumed rate). Motions are counted at 196 frames, the most a batch is padded to, so
    sampling is an upper bound. Not counted: training the evaluator and the classifiers."""
    bench_model = MDMConfig(**bench["model"])
    train = bench["training"]
    bench_flops = training_step_flops(bench_model, train["batch_size"], train["frames"])
    cpu_rate = bench_flops / train["seconds_per_step"]["cached"]["min"]
    model = replace(cfg.model, text_dim=bench_model.text_dim)
    steps = {"pretrain": cfg.pretrain.steps, "finetune": cfg.finetune.steps * len(cfg.styles)}
    step_flops = {"pretrain": training_step_flops(model, cfg.pretrain.batch_size),
                  "finetune": training_step_flops(model, cfg.finetune.batch_size)}
    train_flops = sum(steps[k] * step_flops[k] for k in steps)
    train_samples = (steps["pretrain"] * cfg.pretrain.batch_size
                     + steps["finetune"] * cfg.finetune.batch_size)
    denoising_steps = step_count(cfg.diffusion, cfg.sampling.sampler, cfg.sampling.steps)
    motions = sampled_motions(cfg)
    sample_flops = motions["total"] * denoising_steps * sampling_step_flops(model)
    total = train_flops + sample_flops
    return {
        "profile": cfg.name, "bench_step_flops": bench_flops, "cpu_flops_per_second": cpu_rate,
        "steps": steps, "step_flops": step_flops, "train_flops": train_flops,
        "train_samples": train_samples,
        "denoising_steps": denoising_steps, "motions": motions, "sample_flops": sample_flops,
        "total_flops": total, "gpu": gpu.name, "gpu_peak_tflops": gpu.peak_tflops,
        "gpu_utilisation": gpu.utilisation,
        "cpu_seconds": {"train": train_flops / cpu_rate, "sample": sample_flops / cpu_rate,
                        "total": total / cpu_rate},
        "gpu_seconds": {"train": train_flops / gpu.flops_per_second,
                        "sample": sample_flops / gpu.flops_per_second,
                        "total": total / gpu.flops_per_second},
    }


def readable_duration(seconds: float) -> str:
    """Seconds in the largest unit that keeps the number readable (hours, days or years)."""
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.0f} s"


def cost_rows(estimate: dict) -> list[dict]:
    """`estimate_cost`'s result as table rows {quantity, value, how it is obtained}."""
    e, steps, motions = estimate, estimate["steps"], estimate["motions"]
    return [
        {"quantity": "training steps", "value": f"{steps['pretrain']:,} + {steps['finetune']:,}",
         "how": "pretraining + fine-tuning (all styles), from the profile"},
        {"quantity": "FLOPs per training step",
         "value": f"{e['step_flops']['pretrain'] / 1e9:,.1f} G",
         "how": "counted: forward and backward pass on the meta device"},
        {"quantity": "sampled motions", "value": f"{motions['total']:,}",
         "how": f"{motions['models']} models x ({motions['t2m_per_model']:,} for the T2M "
                f"metrics + {motions['fms_per_model']:,} generated FMS clips)"},
        {"quantity": "denoising steps per motion", "value": f"{e['denoising_steps']:,}",
         "how": "the profile's sampler"},
        {"quantity": "FLOPs: training / sampling",
         "value": f"{e['train_flops'] / 1e15:,.0f} P / {e['sample_flops'] / 1e15:,.0f} P",
         "how": "steps x FLOPs per step (sampling: 196-frame motions, an upper bound)"},
        {"quantity": "this machine's rate", "value": f"{e['cpu_flops_per_second'] / 1e9:,.1f} "
                                                     "GFLOP/s",
         "how": "measured: the benchmark's training step, its FLOPs counted the same way"},
        {"quantity": "time on this machine",
         "value": readable_duration(e["cpu_seconds"]["total"]),
         "how": f"training {readable_duration(e['cpu_seconds']['train'])}, sampling "
                f"{readable_duration(e['cpu_seconds']['sample'])}"},
        {"quantity": f"time on one {e['gpu']}",
         "value": readable_duration(e["gpu_seconds"]["total"]),
         "how": f"ASSUMED {100 * e['gpu_utilisation']:.0f}% of its {e['gpu_peak_tflops']} "
                f"TFLOP/s fp32 peak: training {readable_duration(e['gpu_seconds']['train'])}, "
                f"sampling {readable_duration(e['gpu_seconds']['sample'])}"},
    ]


def sampler_quality(cfg: Profile, replications: int = 2, progress: bool = False) -> dict:
    """Is the book's fast sampler as good as MDM's? The base model answers the same test
    captions (`evaluation.samples` a replication, `replications` draws) with the profile's DDIM
    sampler and with MDM's ancestral sampler over every diffusion step: Table 1's metrics
    (`t2m_protocol.t2m_table`, without multimodality) of both in the run's evaluator's space,
    each a (mean, 95% half-width) over the draws, beside the real clips, and the sampling
    seconds per motion of each sampler."""
    ev = table1.get_evaluator(cfg, progress)
    items = read_split(corpora.humanml3d_root(cfg, False), "test").items
    samplers = {f"DDIM, {cfg.sampling.steps} steps (ours)": replace(cfg.sampling, sampler="ddim"),
                f"ancestral, {cfg.diffusion.steps} steps (MDM)":
                    replace(cfg.sampling, sampler="ddpm")}
    seconds = dict.fromkeys(samplers, 0.0)

    def timed(name: str, generator: stages.Generator):
        def generate(captions, lengths, seed):
            t = time.perf_counter()
            out = generator.generate(captions, lengths, seed, progress=progress)
            seconds[name] += time.perf_counter() - t
            return out
        return generate

    generators = {name: timed(name, stages.load_generator(replace(cfg, sampling=s), stages.BASE))
                  for name, s in samplers.items()}
    protocol = replace(cfg.evaluation, replications=replications, allow_smaller=True)
    table = t2m_protocol.t2m_table(ev, items, generators, protocol, progress,
                                   multimodality_too=False)
    n = replications * cfg.evaluation.samples
    return {"rows": table["rows"], "seconds_per_motion": {k: s / n for k, s in seconds.items()},
            "replications": replications, "samples": cfg.evaluation.samples}


def headline(metrics: dict[str, dict]) -> dict[str, str]:
    """A run's headline numbers, measure -> formatted value, from its metrics files (name ->
    dict: t2m, classification, finetuning): the base model's Table 1 R@3 and FID, the LSTM on
    the held-out real subjects, and per fine-tuned style the requested movement named, the grade
    named by the real-trained LSTM, and the token model's deep-squat depth per grade."""
    out = {}
    base = metrics["t2m"]["rows"].get("Base MDM")
    if base:
        out["base model, Table 1 R@3"] = f"{base['R@3'][0]:.3f}"
        out["base model, Table 1 FID"] = f"{base['FID'][0]:.2f}"
    fitness = metrics["classification"]
    out["LSTM, held-out real subjects' grade"] = f"{fitness['within']['real']['accuracy']:.3f}"
    tuned = [n for n in fitness["real_trained"] if n not in ("real", "base")]
    for name in tuned:
        out[f"{name}: requested movement named"] = f"{fitness['movement'][name]['accuracy']:.2f}"
        out[f"{name}: grade named (real-trained LSTM)"] = \
            f"{fitness['real_trained'][name]['accuracy']:.2f}"
    for name, depth in metrics["finetuning"]["squat_lowest_pelvis_m"].items():
        if name.startswith("token"):
            out[f"{name}: deep squat, lowest pelvis g1/g2/g3 (m)"] = " / ".join(
                "-" if depth[g] is None else f"{depth[g]:.2f}" for g in ("1", "2", "3"))
    return out


def headline_table(runs: dict[str, dict[str, str]]) -> str:
    """`headline`s of several runs (label -> measures) as one markdown table, "-" for a measure
    a run lacks."""
    measures = list(dict.fromkeys(m for values in runs.values() for m in values))
    return markdown_table([{"measure": m, **{label: values.get(m, "-")
                                             for label, values in runs.items()}}
                           for m in measures])
