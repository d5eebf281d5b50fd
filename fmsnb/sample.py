"""Sampling motions from a trained model: captions in, HumanML3D features, joints and videos out.

`generate` turns captions (and, for the `token` style, FMS grades) into motions of the requested
lengths with the diffusion's guided sampler (batched classifier-free guidance, DDIM with 50 steps
by default; `timesteps` says which diffusion steps it visits), in batches, from one seeded
generator, and undoes the feature normalisation. A model whose padding attends
(`mask_padding=False`, MDM's release) samples every motion on the `max_len` canvas it was
trained on, as MDM does; a model that masks padding samples each batch only as long as its
longest motion, which gives the same motions at less cost.
`save_sample` writes a sample to disk as .npy files (its features, and the 22 global joints
`humanml3d.recover_joints` recovers from them) plus an animation; `write_folder` writes a set of
samples into a folder it owns (a manifest, `samples.json`, lists its files) and never touches a
folder holding anything else. Captions of the `numerical` and `textual` styles are conditioned
by the caller (`captions.condition`), exactly as they were for training.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fmsnb import atomic
from fmsnb.config import DiffusionConfig
from fmsnb.diffusion import GaussianDiffusion
from fmsnb.fms import GRADES
from fmsnb.humanml3d import FPS, recover_joints
from fmsnb.render import animate as render_animation

# With masked padding a batch pads to its longest motion; lengths within 25% keep the padding
# under a fifth.
LENGTH_SPREAD = 1.25


def _check_request(model, captions: list[str], lengths: list[int], grades) -> None:
    if isinstance(captions, str) or len(captions) != len(lengths):
        raise ValueError(f"need a list of captions and one length per caption, got "
                         f"{len(captions) if not isinstance(captions, str) else 'a string'} "
                         f"captions and {len(lengths)} lengths")
    max_len = model.cfg.max_len
    bad = [n for n in lengths if isinstance(n, bool) or not isinstance(n, (int, np.integer))
           or not 1 <= n <= max_len]
    if bad:
        raise ValueError(f"lengths must be whole numbers of frames in 1..{max_len} (the model's "
                         f"max_len), got {bad}")
    if grades is None:
        return
    if model.cfg.n_grades == 0:
        raise ValueError("grades were given but the model has no grade token (n_grades=0); "
                         "for the numerical/textual styles condition the captions instead")
    if len(grades) != len(captions):
        raise ValueError(f"need one grade per caption, got {len(grades)} for {len(captions)}")
    bad = [g for g in grades if isinstance(g, bool) or g not in GRADES]
    if bad:
        raise ValueError(f"FMS grades must be in {GRADES}, got {bad}")


def timesteps(diffusion: GaussianDiffusion, sampler: str, steps: int | None) -> list[int]:
    """The descending diffusion steps that `generate` visits: `steps` counts DDIM's (None: the
    diffusion's `ddim_steps`), and "ddpm" runs every step of the diffusion whatever it says."""
    return diffusion.timesteps(sampler, steps if sampler == "ddim" else None)


def step_count(diffusion_cfg: DiffusionConfig, sampler: str, steps: int | None) -> int:
    """How many denoising steps `generate` takes per motion (`timesteps`), for the reports."""
    return len(timesteps(GaussianDiffusion(diffusion_cfg), sampler, steps))


@torch.no_grad()
def generate(model, diffusion, cache, captions: list[str], lengths: list[int], grades=None,
             guidance: float = 2.5, sampler: str = "ddim", steps: int | None = 50, *,
             mean: np.ndarray, std: np.ndarray, seed: int = 0, batch_size: int = 32,
             progress: bool = True, plain: list[str] | None = None,
             grade_scale: float | None = None, grade_interval: float = 1.0) -> list[np.ndarray]:
    """Motions for captions (N,) with lengths (N,) frames -> N denormalised features (T_i, 263).

    grades (N,) in 1..3 go to the model's grade token (models trained with style `token`).
    sampler "ddim" runs `steps` steps; "ddpm" always runs all of the diffusion's steps
    (`timesteps`).
    Caption embeddings come from `cache` (encoded once). Requests are batched by length
    (`length_batches`); with masked padding a batch is padded to its longest motion, and every
    padded frame costs as much as a real one. A model whose padding attends samples on its
    max_len canvas (training padded every motion to it, so the padding is part of the context
    it knows). The answers come back in the order asked. One generator seeded
    with `seed` draws all noise, batch after batch, so the same call gives the same motions.
    Grade guidance (`diffusion.guided`): `plain` (N,) holds each caption without its grade
    (the same caption for the token style, whose grade-free branch is grade 0) and
    `grade_scale` the guidance of the grade alone, at the steps t < grade_interval * T.
    """
    _check_request(model, captions, lengths, grades)
    if grade_scale is not None and (plain is None or len(plain) != len(captions)):
        raise ValueError("grade guidance needs one grade-free caption per caption (plain)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    mean = torch.as_tensor(np.asarray(mean, dtype=np.float32), device=device)
    std = torch.as_tensor(np.asarray(std, dtype=np.float32), device=device)
    order = np.argsort([int(n) for n in lengths], kind="stable")
    text = cache.get([captions[i] for i in order])
    plain_text = None if grade_scale is None else cache.get([plain[i] for i in order])
    lengths = torch.tensor([int(lengths[i]) for i in order])
    grades = None if grades is None else torch.tensor([int(grades[i]) for i in order])
    out = [None] * len(order)
    canvas = None if model.cfg.mask_padding else model.cfg.max_len
    # On the canvas every batch costs the same: fill batches whatever their lengths.
    batches = length_batches(lengths.tolist(), batch_size,
                             LENGTH_SPREAD if canvas is None else math.inf)
    visited = timesteps(diffusion, sampler, steps)
    # The bar counts denoising steps: a single batch would otherwise sit at 0/1 to the end.
    bar = tqdm(total=len(batches) * len(visited),
               desc=f"generating {len(order)} motion(s), denoising steps", disable=not progress)
    for batch in batches:
        n = lengths[batch]
        width = int(n.max()) if canvas is None else canvas
        mask = torch.arange(width)[None, :] < n[:, None]              # (b, T) True = valid
        grade = None if grades is None else grades[batch].to(device)
        grade_free = None if grade_scale is None else (
            plain_text[batch], None if grade is None else torch.zeros_like(grade))
        x0 = diffusion.sample(model, text[batch].to(device), mask.to(device), grade,
                              guidance=guidance, sampler=sampler, steps=len(visited),
                              generator=generator, progress=False, plain=grade_free,
                              grade_scale=grade_scale, grade_interval=grade_interval, bar=bar)
        features = (x0 * std + mean).cpu().numpy()
        for i, f, k in zip(order[batch], features, n):
            out[i] = f[:int(k)]
    bar.close()
    return out


def length_batches(lengths: list[int], batch_size: int, spread: float = LENGTH_SPREAD
                   ) -> list[slice]:
    """Consecutive batches (slices) of ascending `lengths`: at most `batch_size` each, and a new
    batch wherever a length exceeds `spread` times its batch's first, so that no batch pads
    many short motions to a long one."""
    batches, start = [], 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or i - start == batch_size or lengths[i] > spread * lengths[start]:
            batches.append(slice(start, i))
            start = i
    return batches


def save_sample(out_dir, name: str, features: np.ndarray, joints: np.ndarray | None = None,
                animate: bool = True, fps: float = FPS, progress: bool = False) -> dict[str, Path]:
    """Write NAME_features.npy (T, 263), NAME_joints.npy (T, 22, 3) and, with animate=True, the
    video NAME.mp4 (NAME.gif where mp4 encoding fails) under out_dir; returns the paths.
    joints default to `recover_joints(features)`."""
    out_dir = Path(out_dir)
    features = np.asarray(features, dtype=np.float32)
    joints = recover_joints(features) if joints is None else np.asarray(joints, dtype=np.float32)
    if joints.shape != (len(features), 22, 3):
        raise ValueError(f"sample {name!r}: joints {joints.shape} do not match features "
                         f"{features.shape}; expected ({len(features)}, 22, 3)")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"features": out_dir / f"{name}_features.npy", "joints": out_dir / f"{name}_joints.npy"}
    np.save(paths["features"], features)
    np.save(paths["joints"], joints)
    if animate:
        paths["animation"] = render_animation(joints, out_dir / f"{name}.mp4", fps=fps,
                                              progress=progress)
    return paths


MANIFEST = "samples.json"


def _owned_files(out: Path) -> list[str]:
    """Files of an existing output folder that earlier samples wrote (its manifest lists them);
    ValueError where the folder holds anything else, so that nothing of the user's is touched."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return []
    try:
        owned = json.loads((out / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"--out {out} is a folder that holds other files ({', '.join(entries[:3])}"
                         f"{', ...' if len(entries) > 3 else ''}), not earlier samples of fmsnb; "
                         "give a new or empty folder") from None
    foreign = [e for e in entries if e not in owned and e != MANIFEST]
    if foreign:
        raise ValueError(f"--out {out} holds files that fmsnb did not write ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); give a new or empty folder")
    return list(owned)


def write_folder(out, motions: list[np.ndarray], info: dict, animate: bool = True,
                 progress: bool = False) -> Path:
    """Write motions (N of (T_i, 263)) as sample00.., plus caption.txt (the caption, and the
    grade asked for when `info` has one: a token model's caption does not carry it) and the
    manifest samples.json (`info` and the file list), into folder `out`; progress=True shows a
    bar per animation.

    A new folder is made whole in a hidden temporary folder beside it and renamed into place
    (`atomic.temporary_folder`, which also removes the temporaries of killed calls).
    An existing folder is written only when empty or holding nothing but an earlier call's files
    (its manifest); only those files are replaced, and the manifest lists old and new files while
    they are swapped, so an interrupted call leaves a folder the next call accepts.
    """
    out = Path(out)
    owned = _owned_files(out)
    with atomic.temporary_folder(out) as tmp:
        for i, features in enumerate(motions):
            save_sample(tmp, f"sample{i:02d}", features, animate=animate, progress=progress)
        grade = f"FMS grade {info['grade']}\n" if info.get("grade") else ""
        (tmp / "caption.txt").write_text(f"{info.get('caption', '')}\n{grade}")
        files = sorted(p.name for p in tmp.iterdir())
        manifest = json.dumps({**info, "files": files}, indent=1)
        if not out.exists():
            (tmp / MANIFEST).write_text(manifest)
            return atomic.replace_folder(tmp, out)
        swapping = {"files": sorted(set(owned) | set(files))}      # old and new, while swapped
        atomic.write_text(out / MANIFEST, json.dumps(swapping))
        for name in files:
            os.replace(tmp / name, out / name)
        for name in set(owned) - set(files):
            (out / name).unlink(missing_ok=True)
        atomic.write_text(out / MANIFEST, manifest)
    return out

