"""A rehearsal data root: every file the `full` profile reads, in the releases' formats, small.

Nobody can run the `full` profile here: HumanML3D, the FMS dataset, OpenAI's CLIP weights and the
T2M evaluator are not redistributable or not downloadable. `write_data_root` writes a folder
that takes their place file for file and format for format, so that the `rehearsal` profile runs
every real-data code path on it: `HumanML3D/` (six-digit clip names and their `M`-prefixed mirrored
copies, texts with `caption#word/POS ...#start#end` lines including timed sub-clip captions,
one kept and one too short to keep, the split files, Mean.npy and Std.npy over all clips) from
the procedural motions of `fmsnb.standin.actions`; `FMS/` (`Skeleton data/Front`,
`Skeleton data/Side`, `experts_score.json`) from `fmsnb.standin.fms_recorder`;
`clip/ViT-B-32.pt`, a TorchScript archive of openai-clip's own CLIP class as OpenAI publishes it
(fp16 linear, convolution and attention weights, the `input_resolution`, `context_length` and
`vocab_size` entries) with random weights, its text tower exactly ViT-B/32's (what
`clip.load`'s `build_model` infers from the shapes) and its vision tower the smallest
`build_model` accepts, since neither MDM nor this package runs it;
`t2m/text_mot_match/model/finest.tar`, the T2M evaluator's checkpoint with the published keys and
shapes (`EVALUATOR_SHAPES`, written from the release's layout, not from `fmsnb.t2m_evaluator`, so a
drift of our modules from it fails to load) and random weights; its normalisation
`t2m/Comp_v6_KLD01/meta/{mean,std}.npy`, related to Std.npy as the released files are; and the
GloVe vocabulary `glove/our_vab_{data.npy,words.pkl,idx.pkl}` over every word of the project's
captions; and MDM's released model `mdm/humanml_trans_enc_512/model000200000.pt` with its
`args.json`, a state dict in MDM's names and shapes (written from MDM's modules, not from
`fmsnb.mdm`, so that the import is what reads it) at the rehearsal's width and depth, random
weights. Numbers computed on it mean nothing. The root is written whole (a temporary folder
renamed into place, `corpora.made`) and reused while its settings are unchanged; a non-empty
folder that is not a rehearsal root is refused. `python -m fmsnb.standin.rehearsal DIR` writes one.
"""
from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fmsnb import atomic, corpora
from fmsnb.dataset import Caption, read_mean_std, write_mean_std, write_splits
from fmsnb.t2m_evaluator import BIASED_DIMS, FEAT_BIAS, WordVectorizer
from fmsnb.humanml3d import FPS, mirror_caption, mirror_joints
from fmsnb.pos import LEXICON, tag
from fmsnb.standin import actions, fms_recorder
from fmsnb.text import VIT_B32, clip_parts

FIXTURE = "rehearsal"
FORMAT = 2                     # bump when the written files change, so old roots are rewritten
HUMANML3D, FMS = "HumanML3D", "FMS"
CLIP_FILE = "clip/ViT-B-32.pt"
EVALUATOR_FILE = "t2m/text_mot_match/model/finest.tar"
EVALUATOR_MEAN = "t2m/Comp_v6_KLD01/meta/mean.npy"
EVALUATOR_STD = "t2m/Comp_v6_KLD01/meta/std.npy"
GLOVE_DIR = "glove"
MDM_FILE = "mdm/humanml_trans_enc_512/model000200000.pt"
# The release's args.json with the rehearsal's width, depth and diffusion steps (MDM's: 512, 8,
# 1000); the rest as MDM's training script writes it for humanml_trans_enc_512.
MDM_ARGS = {"arch": "trans_enc", "batch_size": 64, "cond_mask_prob": 0.1, "cuda": True,
            "data_dir": "", "dataset": "humanml", "device": 0, "diffusion_steps": 10,
            "emb_trans_dec": False, "eval_batch_size": 32, "eval_during_training": False,
            "eval_num_samples": 1000, "eval_rep_times": 3, "eval_split": "test",
            "lambda_fc": 0.0, "lambda_rcxyz": 0.0, "lambda_vel": 0.0, "latent_dim": 32,
            "layers": 1, "log_interval": 1000, "lr": 0.0001, "lr_anneal_steps": 0,
            "noise_schedule": "cosine", "num_frames": 60, "num_steps": 600000,
            "overwrite": False, "resume_checkpoint": "",
            "save_dir": "./save/humanml_trans_enc_512", "save_interval": 50000, "seed": 10,
            "sigma_small": True, "train_platform_type": "NoPlatform", "unconstrained": False,
            "weight_decay": 0.0}
MDM_POSITIONS = 5000           # rows of MDM's PositionalEncoding table (its max_len)
CLIPS_PER_ACTION = 10          # 130 clips + 130 mirrored; the test split holds > 32 items
SUBJECTS = 6                   # the FMS subject split needs one for val and one for test
# The smallest vision tower CLIP builds: a 32 px image of one 32 px patch, one layer of width 64
# (image_resolution, vision_layers, vision_width, vision_patch_size; heads = width // 64).
SMALLEST_VISION = (32, 1, 64, 32)
CLIP_SIZES = (VIT_B32[0], *SMALLEST_VISION, *VIT_B32[5:])


def _bigru(inp: int, hidden: int, out: int) -> dict[str, tuple[int, ...]]:
    """Shapes of a T2M BiGRUCo encoder after its input layer: GRU(inp -> hidden) both ways, the
    output MLP (Linear(2 hidden -> hidden), LayerNorm, LeakyReLU, Linear(hidden -> out)) and
    the learned initial state `hidden` (2, 1, hidden)."""
    shapes = {}
    for way in ("", "_reverse"):
        shapes |= {f"gru.weight_ih_l0{way}": (3 * hidden, inp),
                   f"gru.weight_hh_l0{way}": (3 * hidden, hidden),
                   f"gru.bias_ih_l0{way}": (3 * hidden,), f"gru.bias_hh_l0{way}": (3 * hidden,)}
    return {**shapes, "output_net.0.weight": (hidden, 2 * hidden), "output_net.0.bias": (hidden,),
            "output_net.1.weight": (hidden,), "output_net.1.bias": (hidden,),
            "output_net.3.weight": (out, hidden), "output_net.3.bias": (out,),
            "hidden": (2, 1, hidden)}


# finest.tar's modules as text-to-motion builds them for HumanML3D: words 300-d, 15 POS tags,
# text hidden 512, movement 259 -> 512 (two Conv1d k4 s2, a Linear), motion hidden 1024, 512-d.
EVALUATOR_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "text_encoder": {"pos_emb.weight": (300, 15), "pos_emb.bias": (300,),
                     "input_emb.weight": (512, 300), "input_emb.bias": (512,),
                     **_bigru(512, 512, 512)},
    "motion_encoder": {"input_emb.weight": (1024, 512), "input_emb.bias": (1024,),
                       **_bigru(1024, 1024, 512)},
    "movement_encoder": {"main.0.weight": (512, 259, 4), "main.0.bias": (512,),
                         "main.3.weight": (512, 512, 4), "main.3.bias": (512,),
                         "out_net.weight": (512, 512), "out_net.bias": (512,)},
}


def _timed_captions(text: str, frames: int, index: int) -> list[Caption]:
    """HumanML3D's timed captions (start/end in seconds, not 0.0#0.0) for clip `index` of
    `frames` feature frames: every third clip gets one over [0.5 s, its last half second), which
    the reader keeps (>= 40 frames), the next one over [0.5 s, 1.5 s), which it filters."""
    end = math.floor(frames / FPS * 2) / 2
    if index % 3 == 0 and end - 0.5 >= 2.0:
        return [Caption(text, tag(text), 0.5, end)]
    if index % 3 == 1:
        return [Caption(text, tag(text), 0.5, 1.5)]
    return []


def _mirrored(c: Caption) -> Caption:
    text = mirror_caption(c.text)
    return Caption(text, tag(text), c.start, c.end)


def write_humanml3d(out: Path, clips_per_action: int, seed: int = 0,
                    progress: bool = False) -> dict[str, list[str]]:
    """The HumanML3D layout under `out`: clips 000000, 000001, ... (`clips_per_action` of each
    stand-in action) with their whole-clip and timed captions, each with its mirrored copy
    M000000, ... in the same split; train/val/test (actions.split_names), train_val and all
    split files; Mean/Std over all clips, as HumanML3D computes them. Returns the splits."""
    by_action, index = {a: [] for a in actions.ACTIONS}, 0
    jobs = [(a, i) for a in actions.ACTIONS for i in range(clips_per_action)]
    for action, i in tqdm(jobs, desc="rehearsal HumanML3D", disable=not progress):
        joints, texts = actions.make_clip(action, seed, i)
        name = f"{index:06d}"
        captions = (actions.whole_clip_captions(texts)
                    + _timed_captions(texts[0], len(joints) - 1, index))
        actions.write_joints(out, name, joints, captions)
        actions.write_joints(out, "M" + name, mirror_joints(joints),
                             [_mirrored(c) for c in captions])
        by_action[action].append(name)
        index += 1
    splits = {k: sorted(v + ["M" + n for n in v])
              for k, v in actions.split_names(by_action, seed).items()}
    splits |= {"train_val": sorted(splits["train"] + splits["val"]),
               "all": sorted(splits["train"] + splits["val"] + splits["test"])}
    write_splits(out, splits)
    write_mean_std(out, splits["all"])
    return splits


def write_clip_weights(path: Path, seed: int = 0) -> Path:
    """`clip/ViT-B-32.pt` as OpenAI publishes it, random weights (see the module docstring)."""
    model_module, _ = clip_parts()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = model_module.CLIP(*CLIP_SIZES).eval()
    model_module.convert_weights(model)     # the release's dtypes: fp16 linear/conv/attention
    resolution = SMALLEST_VISION[0]
    for key, value in (("input_resolution", resolution), ("context_length", CLIP_SIZES[5]),
                       ("vocab_size", CLIP_SIZES[6])):
        model.__dict__.pop(key, None)       # CLIP keeps two as ints; the release, as tensors
        model.register_buffer(key, torch.tensor(value))
    tokens = torch.zeros(1, CLIP_SIZES[5], dtype=torch.long)
    tokens[0, :2] = torch.tensor([CLIP_SIZES[6] - 2, CLIP_SIZES[6] - 1])   # start, end of text
    image = torch.zeros(1, 3, resolution, resolution, dtype=torch.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # tracer warnings, and torch deprecating TorchScript
        archive = torch.jit.trace_module(
            model, {"forward": (image, tokens), "encode_image": (image,),
                    "encode_text": (tokens,)}, check_trace=False)
        return atomic.write(path, lambda f: torch.jit.save(archive, f))


def _random(key: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """PyTorch-like initial values: LayerNorm ones and zeros, a standard-normal initial GRU
    state, else uniform within 1/sqrt(fan-in)."""
    if key.startswith("output_net.1."):
        return torch.ones(shape) if key.endswith("weight") else torch.zeros(shape)
    if key == "hidden":
        return torch.randn(shape, generator=gen)
    bound = 1 / math.sqrt(math.prod(shape[1:]) if len(shape) > 1 else shape[0])
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


def write_evaluator(root: Path, mean: np.ndarray, std: np.ndarray, seed: int = 0) -> None:
    """finest.tar under `root` (EVALUATOR_SHAPES, random; with the trainer's other entries:
    fresh Adam states of the text and motion encoders, epoch and iter) and the evaluator's
    mean/std (263,) float64: the dataset's mean, its std divided as the released one is."""
    gen = torch.Generator().manual_seed(seed)
    state = {name: {k: _random(k, s, gen) for k, s in shapes.items()}
             for name, shapes in EVALUATOR_SHAPES.items()}
    for name in ("text_encoder", "motion_encoder"):
        params = [torch.nn.Parameter(t) for t in state[name].values()]
        state[f"opt_{name}"] = torch.optim.Adam(params, lr=1e-4).state_dict()
    state |= {"epoch": 1, "iter": 1}
    atomic.write(root / EVALUATOR_FILE, lambda f: torch.save(state, f))
    std = np.asarray(std, np.float64).copy()
    std[BIASED_DIMS] /= FEAT_BIAS          # as the release's (t2m_evaluator.normalisation_problems)
    for file, array in ((EVALUATOR_MEAN, np.asarray(mean, np.float64)), (EVALUATOR_STD, std)):
        atomic.write(root / file, lambda f, a=array: np.save(f, a))


def write_glove(folder: Path, seed: int = 0) -> WordVectorizer:
    """our_vab_data.npy (V, 300), our_vab_words.pkl (the V words in index order) and
    our_vab_idx.pkl (word -> index) over every lemma of the project's POS lexicon and the
    evaluator's sos/eos/unk, with fixed random vectors (`WordVectorizer.from_vocabulary`)."""
    words = WordVectorizer.from_vocabulary((lemma for lemma, _ in LEXICON.values()), seed=seed)
    ordered = sorted(words.index, key=words.index.get)
    atomic.write(folder / "our_vab_data.npy", lambda f: np.save(f, words.vectors))
    atomic.write(folder / "our_vab_words.pkl", lambda f: pickle.dump(ordered, f))
    atomic.write(folder / "our_vab_idx.pkl", lambda f: pickle.dump(dict(words.index), f))
    return words


def _mdm_positional(rows: int, d: int) -> torch.Tensor:
    """MDM's PositionalEncoding buffer `pe` (rows, 1, d): sin on even columns, cos on odd."""
    position = np.arange(rows, dtype=np.float64)[:, None]
    angle = position * np.exp(np.arange(0, d, 2) * (-math.log(10000.0) / d))
    table = np.zeros((rows, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return torch.tensor(table, dtype=torch.float32)[:, None]


def write_mdm_release(path: Path, args: dict = MDM_ARGS, seed: int = 0) -> Path:
    """MDM's released model file at `path` and `args.json` beside it: the state dict MDM's
    training loop saves (its `clip_model.*` entries removed), built from the modules MDM's
    trans_enc model holds for HumanML3D (263 features, CLIP's 512-d text, 4 heads, feed-forward
    1024, GELU) at args' latent_dim and layers, PyTorch's initial weights; the positional
    table under both of its owners, as in the release."""
    d, n = args["latent_dim"], args["layers"]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = torch.nn.TransformerEncoderLayer(d, 4, 1024, 0.1, "gelu")
        modules = {"input_process.poseEmbedding": torch.nn.Linear(263, d),
                   "embed_timestep.time_embed": torch.nn.Sequential(
                       torch.nn.Linear(d, d), torch.nn.SiLU(), torch.nn.Linear(d, d)),
                   "embed_text": torch.nn.Linear(512, d),
                   "seqTransEncoder": torch.nn.TransformerEncoder(
                       layer, n, enable_nested_tensor=False),
                   "output_process.poseFinal": torch.nn.Linear(d, 263)}
    state = {f"{name}.{key}": value for name, module in modules.items()
             for key, value in module.state_dict().items()}
    pe = _mdm_positional(MDM_POSITIONS, d)
    state |= {"sequence_pos_encoder.pe": pe, "embed_timestep.sequence_pos_encoder.pe": pe}
    path = atomic.write(path, lambda f: torch.save(state, f))
    atomic.write_text(path.parent / "args.json", json.dumps(args, indent=4, sort_keys=True))
    return path


README = """REHEARSAL DATA ROOT: NOT HUMANML3D, NOT THE FMS DATASET, NOT CLIP, NOT T2M'S EVALUATOR

Written by fmsnb.standin.rehearsal (format {format}, seed {seed}) in the exact on-disk formats
of those releases, so that the `rehearsal` profile runs every code path of `full`. The motions
are procedural (fmsnb.standin.actions, fmsnb.standin.fms_recorder); CLIP, the evaluator, the
word vectors and MDM's model hold random weights. Numbers computed on it say that the pipeline
runs, nothing else.
"""


def _is_rehearsal_root(root: Path) -> bool:
    try:
        return json.loads((root / corpora.MARKER).read_text()).get("fixture") == FIXTURE
    except (OSError, ValueError, AttributeError):
        return False


def write_data_root(root, clips_per_action: int = CLIPS_PER_ACTION, subjects: int = SUBJECTS,
                    seed: int = 0, progress: bool = False) -> Path:
    """Write (or reuse, when its settings match) the rehearsal data root at `root`; returns it.
    ValueError for a non-empty folder that is not a rehearsal root: it is never overwritten."""
    root = Path(root)
    if root.exists() and any(root.iterdir()) and not _is_rehearsal_root(root):
        raise ValueError(f"{root}: not empty and not a rehearsal data root (no {corpora.MARKER} "
                         "written by fmsnb.standin.rehearsal); refusing to write into it")
    settings = {"fixture": FIXTURE, "format": FORMAT, "clips_per_action": clips_per_action,
                "subjects": subjects, "seed": seed}

    def write(tmp: Path) -> None:
        write_humanml3d(tmp / HUMANML3D, clips_per_action, seed, progress)
        fms_recorder.write(tmp / FMS, subjects, max_episodes=1, seed=seed, progress=progress)
        write_clip_weights(tmp / CLIP_FILE, seed)
        write_evaluator(tmp, *read_mean_std(tmp / HUMANML3D), seed=seed)
        write_glove(tmp / GLOVE_DIR, seed)
        write_mdm_release(tmp / MDM_FILE, seed=seed)
        (tmp / "README.txt").write_text(README.format(format=FORMAT, seed=seed))
    return corpora.made(root, settings, write)


def sizes(root: Path) -> dict[str, int]:
    """Bytes under each top-level part of a data root (HumanML3D, FMS, clip, t2m, glove, mdm)."""
    return {part.name: sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
            for part in sorted(Path(root).iterdir()) if part.is_dir()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmsnb.standin.rehearsal",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the data root to write (absent, empty, or an "
                                               "earlier rehearsal root)")
    parser.add_argument("--clips-per-action", type=int, default=CLIPS_PER_ACTION)
    parser.add_argument("--subjects", type=int, default=SUBJECTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = write_data_root(args.out, args.clips_per_action, args.subjects, args.seed,
                               progress=not args.quiet)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes(root).items())
    print(f"rehearsal data root {root} ({parts}) in {time.perf_counter() - start:.1f} s; run "
          f"it with --profile rehearsal --data-root {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
