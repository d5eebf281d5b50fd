"""The stages of a run, driven by its profile: pretraining, fine-tuning, and sampling the models.

A run has one base model, pretrained on the HumanML3D-layout corpus with plain captions, and one
fine-tuned model per conditioning style of the profile (`numerical`, `textual`, `token`), each
started from the base model's weights and trained on the aligned FMS corpus. Their checkpoints
live in `runs/<profile>/models/<name>/`; every stage resumes where an earlier call stopped, so
re-running a chapter continues or reuses training instead of repeating it. `Generator` wraps a
trained model for sampling: free captions for the T2M metrics, and (movement, grade) requests,
captioned the way that model was trained, for the FMS chapters. A fine-tune may instead start
from another checkpoint, or from MDM's released model (`mdm_release`), imported into
`models/mdm/`; a profile that names the release (`mdm_release:`) makes it the run's base model
(`base_checkpoint`): the fine-tunes start from it and the base model's samples, Table 1's Base
MDM row among them, are its, while pretraining still trains `models/base/`. The notebooks and
the command line call these same functions.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fmsnb import atomic, corpora, distributed, mdm_release
from fmsnb.captions import STYLES, Style, check_grade, check_style, movement_captions
from fmsnb.corpus import read_fms_meta, read_grades
from fmsnb.config import MDMConfig, Profile
from fmsnb.dataset import MotionDataset, read_mean_std, read_split
from fmsnb.fms import GRADES, MOVEMENTS
from fmsnb.diffusion import GaussianDiffusion
from fmsnb.mdm import MDM
from fmsnb.sample import generate
from fmsnb.text import CaptionCache, SideWords, Words, encoder_dim, load_encoder
from fmsnb.train import (LOSS_FILE, checkpoint_path, latest_checkpoint, load_checkpoint, load_model,
                         train)

BASE = "base"
MDM_RELEASE = "mdm"      # the folder of MDM's released model, imported to fine-tune from
# A generated set named "<style>+gg" is the <style> model sampled with grade guidance (ours).
GUIDED = "+gg"


def model_names(cfg: Profile) -> list[str]:
    """The run's models: the base model, then one per fine-tuning style."""
    return [BASE, *cfg.styles]


def generated_names(cfg: Profile) -> list[str]:
    """The run's generated FMS sets: one per model, then the grade-guided ablations of the
    styles in `generation.grade_guided` (sampled from the same models)."""
    return [*model_names(cfg), *[s + GUIDED for s in cfg.generation.grade_guided]]


def model_dir(cfg: Profile, name: str) -> Path:
    return cfg.run_dir / "models" / name


def text_cache(cfg: Profile) -> CaptionCache:
    """The profile's frozen text encoder behind a caption cache kept in the run directory."""
    weights = cfg.text.weights
    if weights and cfg.data_root:
        weights = str(cfg.data_file(weights))
    encoder = load_encoder(cfg.text.encoder, weights)
    if cfg.text.side_words:
        encoder = SideWords(encoder)
    if cfg.text.words:
        encoder = Words(encoder, cfg.text.words)
    return CaptionCache(encoder, cfg.run_dir / "cache")


def model_config(cfg: Profile, text_dim: int, style: Style = STYLES["none"]) -> MDMConfig:
    """The profile's MDM settings for an encoder of `text_dim` and a conditioning style."""
    words = cfg.text.words
    return replace(cfg.model, text_dim=text_dim, n_grades=3 if style.grade_token else 0,
                   words=words, word_dim=encoder_dim(cfg.text.encoder) if words else 0)


def new_model(cfg: Profile, text_dim: int, style: Style = STYLES["none"]) -> MDM:
    """A freshly initialised MDM for the profile (`model_config`), its weights drawn from the
    profile's seed: the same in every process, whatever drew random numbers before."""
    torch.manual_seed(cfg.seed)
    return MDM(model_config(cfg, text_dim, style))


def trained_checkpoint(cfg: Profile, name: str) -> Path:
    """The latest checkpoint of model `name`; an error saying which stage to run if none."""
    path = latest_checkpoint(model_dir(cfg, name))
    if path is None:
        stage = "pretraining" if name == BASE else f"fine-tuning with style {name!r}"
        raise FileNotFoundError(f"no checkpoint in {model_dir(cfg, name)}: run {stage} first "
                                f"(python -m fmsnb {'pretrain' if name == BASE else 'finetune'} "
                                f"--profile {cfg.name}"
                                f"{'' if name == BASE else ' --style ' + name})")
    return path


def pretrain(cfg: Profile, progress: bool = True, device=None) -> list[dict]:
    """Train (or continue) the base model on the HumanML3D-layout train split; the loss log.
    device: where to train (default: a GPU if there is one). Under torchrun every process calls
    it; rank 0 makes the corpus first, if it is a stand-in still to make."""
    group = distributed.current()
    progress = progress and group.main
    with distributed.main_first(group):
        root = corpora.humanml3d_root(cfg, progress)
    data = read_split(root, "train", progress=progress)
    cache = text_cache(cfg)
    model = new_model(cfg, cache.encoder.dim)
    return train(model, GaussianDiffusion(cfg.diffusion), MotionDataset(data, seed=cfg.seed),
                 cache, cfg.pretrain, model_dir(cfg, BASE), resume=True, device=device,
                 progress=progress)


def imported_release(cfg: Profile, path, encoder, progress: bool = True) -> Path:
    """MDM's released model at `path` (`mdm_release`), written as an fmsnb checkpoint into
    `models/mdm/` with the HumanML3D corpus's Mean/Std, which MDM trained it with; its path.
    An import of the same file, newer than it, with the same model, diffusion and encoder, is
    reused."""
    path = Path(path).expanduser()
    model_cfg = model_config(cfg, encoder.dim)
    out = checkpoint_path(model_dir(cfg, MDM_RELEASE), mdm_release.release_step(path))
    if out.is_file() and path.is_file() and out.stat().st_mtime >= path.stat().st_mtime:
        saved = load_checkpoint(out)["config"]
        if (saved.get("init_from"), saved["model"], saved["diffusion"], saved["encoder_key"]) \
                == (f"{mdm_release.PREFIX}{path.resolve()}", asdict(model_cfg),
                    asdict(cfg.diffusion), encoder.key):
            return out
    mean, std = read_mean_std(corpora.humanml3d_root(cfg, progress))
    return mdm_release.write_checkpoint(path, model_dir(cfg, MDM_RELEASE), model_cfg,
                                        cfg.diffusion, encoder, mean, std)


def release_file(cfg: Profile) -> Path | None:
    """The MDM release the profile names as its base (`mdm_release`; a relative path is under
    the data root), or None when it names none."""
    if not cfg.mdm_release:
        return None
    path = cfg.data_file(cfg.mdm_release)
    if path is None:
        raise ValueError(f"params/{cfg.name}.yml: mdm_release {cfg.mdm_release!r} is relative to "
                         "the data root, and no --data-root was given")
    return path


def base_checkpoint(cfg: Profile, encoder=None, progress: bool = False) -> Path:
    """The run's base model: MDM's release imported into `models/mdm/` when the profile names
    one (`release_file`; imported on first use with `encoder`, default the profile's), else
    the latest checkpoint pretrained in `models/base/`."""
    release = release_file(cfg)
    if release is None:
        return trained_checkpoint(cfg, BASE)
    return imported_release(cfg, release, encoder or text_cache(cfg).encoder, progress)


def describe_base(cfg: Profile) -> str:
    """The run's base model in words, for the chapters: MDM's release (imported on first use,
    as `base_checkpoint`) or the model pretrained in this run."""
    release = release_file(cfg)
    if release is None:
        return f"the base model pretrained in this run (`{model_dir(cfg, BASE)}`)"
    return (f"MDM's released model `{release}` (the profile's `mdm_release`), imported as "
            f"`{base_checkpoint(cfg)}`")


def finetune(cfg: Profile, style: str, progress: bool = True,
             init_from: str | None = None, device=None) -> list[dict]:
    """Fine-tune (or continue fine-tuning) a base model on the FMS corpus with one style.

    The base is the run's (`base_checkpoint`: the pretrained model, or the release the profile
    names), or `init_from`: an fmsnb checkpoint's path, or "mdm:PATH" for MDM's released model
    (`imported_release`). The FMS clips are normalised
    with the base model's own mean/std: the model reads features in the representation it was
    pretrained on, whatever corpus they come from. device: as for `pretrain`; under torchrun
    rank 0 imports the release and makes the corpora, the others then read them.
    """
    conditioning = check_style(style)
    if conditioning.name == "none":
        raise ValueError("style 'none' is the base model's; fine-tune with one of "
                         f"{[s for s in STYLES if s != 'none']}")
    if init_from is None and cfg.mdm_release:
        init_from = f"{mdm_release.PREFIX}{release_file(cfg)}"
    # A missing base model is reported before the text encoder loads.
    base = trained_checkpoint(cfg, BASE) if init_from is None else None
    group = distributed.current()
    progress = progress and group.main
    cache = text_cache(cfg)
    if init_from is not None and init_from.startswith(mdm_release.PREFIX):
        if group.main:
            base = imported_release(cfg, init_from[len(mdm_release.PREFIX):], cache.encoder,
                                    progress)
        base = distributed.from_main(base, group)
    elif init_from is not None:
        base = Path(init_from).expanduser()
    ckpt = load_checkpoint(base)
    with distributed.main_first(group):
        root = corpora.fms_corpus_root(cfg, progress)
    data = read_split(root, "train", mean=ckpt["mean"].numpy(), std=ckpt["std"].numpy(),
                      progress=progress)
    model = new_model(cfg, cache.encoder.dim, conditioning)
    return train(model, GaussianDiffusion(cfg.diffusion), MotionDataset(data, seed=cfg.seed),
                 cache, cfg.finetune, model_dir(cfg, style), resume=True, style=conditioning,
                 grades=read_grades(root), init_from=base, device=device, progress=progress)


def _finetune_worker(cfg: Profile, style: str, reply) -> None:
    """One style's fine-tune in a spawned process; its loss log or its error goes to `reply`.
    One torch thread: several single-threaded processes fill the cores without the stalls of
    two multi-threaded ones. SIGTERM unwinds like Ctrl-C, so `train` says where to resume and
    leaves no temporary file."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        reply.send(("log", finetune(cfg, style, progress=False)))
    except BaseException as err:                   # KeyboardInterrupt too: the parent decides
        reply.send(("error", err))


def _steps_done(cfg: Profile, style: str) -> int:
    """The last step in model `style`'s loss log (0 before its first row)."""
    path = model_dir(cfg, style) / LOSS_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0


def style_workers(cfg: Profile, styles: list[str]) -> int:
    """How many of `styles` `finetune_styles` trains at once: `cfg.style_processes`, at most
    one per style."""
    return min(cfg.style_processes, len(styles))


def finetune_styles(cfg: Profile, styles: list[str], progress: bool = True) -> dict[str, list]:
    """Fine-tune (or continue) every style of `styles` (`finetune`); returns style -> loss log.
    The styles go by name to `finetune`, in this process or a spawned one, which checks each.

    With `cfg.style_processes` > 1 that many styles train at once, each in a spawned process
    with one torch thread (`_finetune_worker`), and one bar follows their loss logs; on a GPU
    keep 1. The first error, a worker that dies, or an interruption stops them all, each at
    its last checkpoint, from which the same call resumes."""
    workers = style_workers(cfg, styles)
    if workers <= 1:
        return {style: finetune(cfg, style, progress) for style in styles}
    base_checkpoint(cfg, progress=progress)            # what every worker needs, made once here
    corpora.fms_corpus_root(cfg, progress)
    context = multiprocessing.get_context("spawn")     # a fresh interpreter: no forked threads
    waiting, running, logs = list(styles), {}, {}
    total = len(styles) * cfg.finetune.steps
    bar = tqdm(total=total, desc=f"fine-tuning {len(styles)} styles, {workers} at once",
               disable=not progress)
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                style = waiting.pop(0)
                ours, theirs = context.Pipe(duplex=False)
                process = context.Process(target=_finetune_worker, args=(cfg, style, theirs),
                                          name=f"fine-tune {style}", daemon=True)
                process.start()
                running[style] = (process, ours)
            time.sleep(1.0)
            bar.update(sum(_steps_done(cfg, s) for s in styles) - bar.n)
            for style, (process, reply) in list(running.items()):
                if reply.poll():
                    kind, value = reply.recv()
                    process.join()
                    del running[style]
                    if kind == "error":
                        raise value
                    logs[style] = value
                elif not process.is_alive():
                    raise RuntimeError(f"the {style} fine-tune's process died (exit code "
                                       f"{process.exitcode}); run again to resume it from "
                                       f"{latest_checkpoint(model_dir(cfg, style))}")
    finally:
        for process, _ in running.values():             # SIGTERM: each stops at a checkpoint
            process.terminate()
        for process, _ in running.values():
            process.join()
        bar.close()
    return {style: logs[style] for style in styles}


def fms_lengths(cfg: Profile) -> dict[str, int]:
    """Per movement, the median length (frames) of its real FMS training clips, capped at the
    model's maximum: generated FMS motions take the length of a typical real one."""
    root = corpora.fms_corpus_root(cfg, progress=False)
    meta = read_fms_meta(root)
    train_names = set((root / "train.txt").read_text().split())
    lengths: dict[str, list[int]] = {}
    for name, info in meta.items():
        if name in train_names:
            lengths.setdefault(info["movement"], []).append(int(info["frames"]) - 1)
    overall = np.median([n for v in lengths.values() for n in v])
    return {m: int(min(np.median(lengths.get(m, [overall])) // 4 * 4, cfg.model.max_len))
            for m in MOVEMENTS}


@dataclass
class Generator:
    """A trained model ready to sample, with the caption style it was trained with."""
    name: str
    style: Style
    model: MDM
    diffusion: GaussianDiffusion
    cache: CaptionCache
    mean: np.ndarray
    std: np.ndarray
    cfg: Profile
    grade_scale: float | None = None     # grade guidance (a "+gg" generator), else None
    grade_interval: float = 1.0          # the low-noise share of the steps it acts on

    def generate(self, captions: list[str], lengths: list[int], seed: int = 0,
                 grades=None, progress: bool = False, plain: list[str] | None = None
                 ) -> list[np.ndarray]:
        """De-normalised features (T_i, 263) for captions as given (no grade styling). A
        grade-guided generator also takes `plain`, the captions without their grade."""
        s = self.cfg.sampling
        guided = self.grade_scale is not None and plain is not None
        return generate(self.model, self.diffusion, self.cache, captions, lengths, grades,
                        guidance=s.guidance, sampler=s.sampler, steps=s.steps, mean=self.mean,
                        std=self.std, seed=seed, batch_size=s.batch_size, progress=progress,
                        plain=plain if guided else None,
                        grade_scale=self.grade_scale if guided else None,
                        grade_interval=self.grade_interval)

    def caption(self, movement: str, grade: int) -> str:
        """The caption this model is asked with for an FMS movement at a grade: the plain one
        for the base and token models, the grade-styled one for numerical and textual."""
        return self.style.condition(movement_captions(movement)[0], grade)

    def generate_fms(self, movements: list[str], grades: list[int], lengths: list[int],
                     seed: int = 0, progress: bool = False) -> list[np.ndarray]:
        """Motions of FMS movements at requested grades (1..3)."""
        grades = [check_grade(g) for g in grades]
        captions = [self.caption(m, g) for m, g in zip(movements, grades)]
        token = grades if self.style.grade_token else None
        plain = None if self.style.name == "none" else [movement_captions(m)[0] for m in movements]
        return self.generate(captions, lengths, seed, token, progress, plain)


def model_checkpoint(cfg: Profile, name: str, encoder=None) -> Path:
    """The checkpoint model `name` samples from: the run's base (`base_checkpoint`) for
    `base`, a style's latest fine-tuned checkpoint otherwise."""
    return base_checkpoint(cfg, encoder) if name == BASE else trained_checkpoint(cfg, name)


def load_generator(cfg: Profile, name: str, device=None, checkpoint=None) -> Generator:
    """Model `name` (`base` or a style) from `checkpoint`, default `model_checkpoint` (EMA
    weights if any); "<style>+gg" is that style's model sampled with grade guidance
    (`sampling.grade_guidance_for` the style). A checkpoint given is how chapter 03 samples
    the base it pretrained when the profile's base is MDM's release."""
    guided = name.endswith(GUIDED)
    name = name.removesuffix(GUIDED)
    if guided and name == BASE:
        raise ValueError("the base model has no grade to guide")
    style = check_style("none" if name == BASE else name)
    cache = text_cache(cfg)
    model, diffusion, ckpt = load_model(checkpoint or model_checkpoint(cfg, name, cache.encoder),
                                        device=device)
    if cache.encoder.dim != model.cfg.text_dim:
        raise ValueError(f"model {name} expects {model.cfg.text_dim}-d text embeddings but the "
                         f"profile's encoder {cfg.text.encoder!r} gives {cache.encoder.dim}-d")
    scale, interval = cfg.sampling.grade_guidance_for(style.name)
    return Generator(name, style, model, diffusion, cache, ckpt["mean"].numpy(),
                     ckpt["std"].numpy(), cfg, scale if guided else None, interval)


def generated_fms_set(cfg: Profile, name: str, progress: bool = True) -> dict:
    """Model `name`'s generated FMS dataset: `per_cell` motions for every (movement, grade),
    each of its movement's typical length (the paper: 40 per cell, 1,800 motions).

    Returns features (list of (T_i, 263)), movements and grades (N,). Written once to
    `runs/<profile>/generated/<name>.npz` and reused while the model and settings are unchanged.
    """
    path = cfg.run_dir / "generated" / f"{name}.npz"
    checkpoint = model_checkpoint(cfg, name.removesuffix(GUIDED))
    stamp = (f"{checkpoint.parent.name}/{checkpoint.name}|{cfg.generation.per_cell}|"
             f"{cfg.sampling}|{cfg.seed}")
    if path.is_file():
        saved = np.load(path)
        if str(saved["stamp"]) == stamp:
            split = np.cumsum(saved["lengths"])[:-1]
            return {"features": np.split(saved["features"], split),
                    "movements": saved["movements"], "grades": saved["grades"]}
    lengths = fms_lengths(cfg)
    cells = [(m, g) for m in MOVEMENTS for g in GRADES for _ in range(cfg.generation.per_cell)]
    movements = np.array([m for m, _ in cells])
    grades = np.array([g for _, g in cells])
    features = load_generator(cfg, name).generate_fms(
        list(movements), grades.tolist(), [lengths[m] for m in movements], seed=cfg.seed,
        progress=progress)
    atomic.write(path, lambda out: np.savez(out, features=np.concatenate(features),
                                            lengths=[len(f) for f in features],
                                            movements=movements, grades=grades, stamp=stamp))
    return {"features": features, "movements": movements, "grades": grades}
