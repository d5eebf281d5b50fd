"""MDM's released text-to-motion model, imported into `fmsnb.mdm.MDM` as a base to fine-tune.

MDM (Tevet et al. 2023) releases its HumanML3D model as a state dict (`humanml_trans_enc_512/
model000200000.pt`, the checkpoint its README samples from) beside the `args.json` of its training
run. `import_weights` renames its parameters onto ours (`input_process.poseEmbedding` ->
`input_proj`, `embed_timestep.time_embed` -> `time_mlp`, `embed_text` -> `text_proj`,
`seqTransEncoder.layers.N` -> `encoder.layers.N`, the same PyTorch layer, which runs batch-first
here, `output_process.poseFinal` -> `output_proj`), checks every shape, checks that its
positional table `sequence_pos_encoder.pe` is the sinusoid this model computes, and drops the
frozen CLIP (`clip_model.*`), whose caption features the caption cache provides. What our model
has and MDM lacks is set so that the imported model computes exactly MDM's function: the text
gain is the identity; with side words (`text.SideWords`) the four extra input columns of the text
projection are zero, so the side words start silent and fine-tuning decides their weight; a grade
token, which only the `token` fine-tune grows, keeps its fresh initialisation there, as it does
from a base trained here. `settings_problems` holds args.json (trans_enc, humanml, latent_dim,
layers, cond_mask_prob, diffusion steps and schedule) and the choices MDM's code fixes (4 heads,
feed-forward 1024, GELU, one frame a token, a 196-frame canvas) against the profile;
`write_checkpoint` stores the imported model as an fmsnb checkpoint that fine-tuning starts from.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fmsnb import atomic
from fmsnb.config import DiffusionConfig, MDMConfig
from fmsnb.mdm import MDM, sinusoid
from fmsnb.text import SIDE_SLOTS, SIDE_WORDS
from fmsnb.train import CHECKPOINT_FORMAT, checkpoint_path

PREFIX = "mdm:"                   # how a command line names a release: mdm:/path/model000200000.pt
ARGS_FILE = "args.json"
CLIP_DIM = 512                    # CLIP ViT-B/32's caption features, what `embed_text` reads
SIDE_DIMS = SIDE_SLOTS * len(SIDE_WORDS)     # what `text.SideWords` appends to them
# Fixed by MDM's get_model_args (and HumanML3D's 196-frame canvas); args.json does not carry them.
FIXED = {"n_feats": 263, "heads": 4, "ff_size": 1024, "activation": "gelu", "patch": 1,
         "max_len": 196}
# MDM's names -> ours; `sequence_pos_encoder.pe` (also under embed_timestep) is only checked.
RENAMES = {"input_process.poseEmbedding.": "input_proj.", "embed_timestep.time_embed.": "time_mlp.",
           "embed_text.": "text_proj.", "seqTransEncoder.": "encoder.",
           "output_process.poseFinal.": "output_proj."}
POSITIONAL = "sequence_pos_encoder.pe"
_STEP = re.compile(r"model(\d+)\.pt$")


def read_args(path) -> dict:
    """The args.json of MDM's training run (a mapping with at least arch, dataset, latent_dim,
    layers and cond_mask_prob); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MDM's {ARGS_FILE} not found; the release keeps it in the "
                                "folder of the model file")
    try:
        args = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    missing = [k for k in ("arch", "dataset", "latent_dim", "layers", "cond_mask_prob")
               if not isinstance(args, dict) or k not in args]
    if missing:
        raise ValueError(f"{path}: no {missing}: not the {ARGS_FILE} of an MDM training run")
    return args


def settings_problems(args: dict, model: MDMConfig, diffusion: DiffusionConfig) -> list[str]:
    """How MDM's release (its args.json, and what MDM's code fixes) differs from the profile's
    model and diffusion; empty when the release maps onto them exactly."""
    problems = []
    for key, wanted, why in (("arch", "trans_enc", "only MDM's transformer encoder maps onto "
                                                   "this model"),
                             ("dataset", "humanml", "the book's motions are HumanML3D features"),
                             ("text_encoder_type", "clip", "the book feeds CLIP caption features"),
                             ("unconstrained", False, "the book conditions on captions"),
                             ("sigma_small", True, "the book's ancestral sampler uses the "
                                                   "fixed-small variance")):
        if args.get(key, wanted) != wanted:
            problems.append(f"{key} is {args[key]!r}, not {wanted!r} ({why})")
    pairs = [("latent_dim", args["latent_dim"], "model.latent_dim", model.latent_dim),
             ("layers", args["layers"], "model.layers", model.layers),
             ("cond_mask_prob", args["cond_mask_prob"], "model.cond_drop_prob",
              model.cond_drop_prob),
             ("mask_frames", bool(args.get("mask_frames", False)), "model.mask_padding",
              model.mask_padding),
             ("diffusion_steps", args.get("diffusion_steps", 1000), "diffusion.steps",
              diffusion.steps),
             ("noise_schedule", args.get("noise_schedule", "cosine"), "diffusion.schedule",
              diffusion.schedule)]
    pairs += [(f"{k} (fixed by MDM)", v, f"model.{k}", getattr(model, k)) for k, v in FIXED.items()]
    problems += [f"{theirs} is {value!r} but the profile's {ours} is {mine!r}"
                 for theirs, value, ours, mine in pairs if value != mine]
    if model.text_dim not in (CLIP_DIM, CLIP_DIM + SIDE_DIMS):
        problems.append(f"the release reads {CLIP_DIM}-d CLIP ViT-B/32 caption features, the "
                        f"profile's text encoder gives {model.text_dim}-d (text.encoder: clip)")
    if model.n_grades:
        problems.append("the release has no grade token: import it as a base model (n_grades 0)")
    return problems


def import_weights(state: dict, cfg: MDMConfig, source: str = "MDM state dict") -> dict:
    """MDM's state dict (its names and shapes) -> the state dict of `MDM(cfg)`, every shape
    checked, the positional table compared with `mdm.sinusoid`, `clip_model.*` left out, the
    text gain the identity and text columns beyond CLIP's 512 zero (see the module docstring)."""
    ours, positional, unknown = {}, [], []
    for key, value in state.items():
        if key.startswith("clip_model."):
            continue
        if key.endswith(POSITIONAL):
            positional.append((key, value))
            continue
        prefix = next((p for p in RENAMES if key.startswith(p)), None)
        if prefix is None:
            unknown.append(key)
            continue
        ours[RENAMES[prefix] + key[len(prefix):]] = value.detach().float()
    if unknown:
        raise ValueError(f"{source}: parameters fmsnb's MDM does not have: {unknown[:5]}"
                         f"{' ...' if len(unknown) > 5 else ''} (not a trans_enc text model?)")
    if not positional:
        raise ValueError(f"{source}: no {POSITIONAL}; not an MDM state dict")
    n = cfg.max_len + 1                                     # the condition token, then frames
    table = sinusoid(torch.arange(n), cfg.latent_dim)
    for key, pe in positional:
        if pe.ndim != 3 or pe.shape[0] < n or pe.shape[1:] != (1, cfg.latent_dim) or \
                not torch.allclose(pe[:n, 0].float(), table, atol=1e-4):
            raise ValueError(f"{source}: {key} of shape {tuple(pe.shape)} is not the sinusoidal "
                             f"table (>= {n}, 1, {cfg.latent_dim}) this model computes")
    text = ours.get("text_proj.weight")
    if text is not None and text.ndim == 2 and text.shape[1] == CLIP_DIM < cfg.text_dim:
        ours["text_proj.weight"] = torch.nn.functional.pad(text, (0, cfg.text_dim - text.shape[1]))
    ours["text_gain"] = torch.eye(cfg.text_dim)
    with torch.device("meta"):                              # shapes only, nothing allocated
        wanted = {k: tuple(v.shape) for k, v in MDM(cfg).state_dict().items()}
    problems = [f"{k} missing" for k in wanted if k not in ours]
    problems += [f"{k} not in the model" for k in ours if k not in wanted]
    problems += [f"{k}: {tuple(v.shape)}, the model's is {wanted[k]}" for k, v in ours.items()
                 if k in wanted and tuple(v.shape) != wanted[k]]
    if problems:
        raise ValueError(f"{source} does not fit the profile's model (our names): "
                         + "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else ""))
    return ours


def load_release(path, model: MDMConfig, diffusion: DiffusionConfig) -> tuple[dict, dict]:
    """(our state dict, args.json) of the release at `path` (model<step>.pt, args.json beside
    it), checked against the profile's model and diffusion. A file that holds {"model": ...}
    instead (later releases) is read too, its weight average {"model_avg": ...} when it has one,
    as fmsnb prefers a checkpoint's EMA weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MDM release not found: {path} (e.g. humanml_trans_enc_512/"
                                "model000200000.pt from MDM's README)")
    args = read_args(path.parent / ARGS_FILE)
    problems = settings_problems(args, model, diffusion)
    if problems:
        raise ValueError(f"{path.parent / ARGS_FILE}: MDM's release does not fit the profile: "
                         + "; ".join(problems))
    state = atomic.torch_load(path, f"{path}: not readable as a torch state dict")
    if isinstance(state, dict):
        state = state.get("model_avg", state.get("model", state))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict (names -> tensors)")
    return import_weights(state, model, str(path)), args


def release_step(path) -> int:
    """The training step a release's file name carries (model000200000.pt: 200000; else 0),
    which names its imported checkpoint."""
    match = _STEP.search(Path(path).name)
    return int(match.group(1)) if match else 0


def write_checkpoint(path, run_dir, model: MDMConfig, diffusion: DiffusionConfig, encoder,
                     mean: np.ndarray, std: np.ndarray) -> Path:
    """The release at `path` as an fmsnb checkpoint `run_dir/ckpt_<its step>.pt` (written
    atomically; returned) that `train(init_from=...)` and `load_model` read. mean/std (263,)
    are the HumanML3D normalisation it was trained with; `encoder` is the profile's text
    encoder (its name and key are recorded, as for a model trained here)."""
    if encoder.name != "clip":
        raise ValueError(f"MDM's release reads CLIP ViT-B/32 caption features; the profile's text "
                         f"encoder is {encoder.name!r} (set text.encoder: clip)")
    weights, args = load_release(path, model, diffusion)
    step = release_step(path)
    out = checkpoint_path(run_dir, step)
    atomic.torch_save(
        {"format": CHECKPOINT_FORMAT, "step": step, "model": weights, "ema": None,
         "config": {"model": asdict(model), "diffusion": asdict(diffusion),
                    "encoder": encoder.name, "encoder_key": encoder.key, "style": "none",
                    "init_from": f"{PREFIX}{Path(path).resolve()}", "mdm_args": args},
         "mean": torch.from_numpy(np.asarray(mean, dtype=np.float32)),
         "std": torch.from_numpy(np.asarray(std, dtype=np.float32))}, out)
    return out
