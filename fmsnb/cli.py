"""The command line: `python -m fmsnb <command>`, the same functions the notebooks call.

Commands: `data` (make or check the run's corpora), `pretrain`, `finetune`, `sample` (motions
for a caption or an FMS movement at a grade, written as joints, features and an animation) and
`bench` (the performance benchmark). Every command takes `--profile` and `--data-root`. Bad
input (an unknown style or movement, a grade outside 1-3, a length the model cannot make, a
checkpoint of another configuration, a corrupt file, an --out folder holding other files) ends
with a message and exit code 2, and nothing is written half-way (`sample.write_folder`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmsnb import corpora, stages
from fmsnb.bench import run_bench
from fmsnb.captions import GRADES, STYLES
from fmsnb.config import load_profile
from fmsnb.fms import MOVEMENTS
from fmsnb.sample import write_folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fmsnb", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--profile", default="default",
                       help="profile name: params/<profile>.yml (default: %(default)s)")
        p.add_argument("--data-root", default=None,
                       help="folder holding the real datasets (HumanML3D/, FMS/); without it, "
                            "the embedded procedural stand-ins are used")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        return p

    command("data", "make the run's corpora (stand-ins) or check the real ones, and report them")
    p = command("pretrain", "pretrain the base MDM on the HumanML3D-layout corpus")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint of an earlier run")
    p = command("finetune", "fine-tune the base model on the FMS corpus with one style")
    p.add_argument("--style", required=True, choices=[s for s in STYLES if s != "none"],
                   help="how the FMS grade reaches the model")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint of an earlier run")
    p = command("sample", "generate motions for a caption, or an FMS movement at a grade")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--caption", help="free text, used as given")
    what.add_argument("--movement", choices=list(MOVEMENTS),
                      help="an FMS movement code; the caption follows the model's style")
    p.add_argument("--grade", type=int, choices=GRADES,
                   help="FMS grade to ask for (with --movement; needed by fine-tuned models)")
    p.add_argument("--style", default="none", choices=list(STYLES),
                   help="which model: none = the base model, else the model fine-tuned with "
                        "that style (default: %(default)s)")
    p.add_argument("--length", type=int, default=None,
                   help="frames at 20 fps (default: 120, or the movement's typical length)")
    p.add_argument("--num-samples", type=int, default=1, help="motions to generate")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the profile's)")
    p.add_argument("--sampler", choices=("ddim", "ddpm"), default=None,
                   help="ddim (respaced, fast) or ddpm (every diffusion step)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/<profile>/samples/<name>)")
    p.add_argument("--no-animation", action="store_true", help="write only the .npy files")
    command("bench", "measure training and sampling speed: ours against MDM's way")
    return parser


def _data(cfg, progress: bool) -> None:
    print("data:", corpora.describe(cfg))
    print("HumanML3D-layout corpus:", corpora.humanml3d_root(cfg, progress))
    print("FMS recordings:", corpora.fms_raw_root(cfg, progress))
    print("FMS corpus in HumanML3D layout:", corpora.fms_corpus_root(cfg, progress))


def _sample(cfg, args, progress: bool) -> Path:
    name = stages.BASE if args.style == "none" else args.style
    if args.movement and args.grade is None and name != stages.BASE:
        raise ValueError(f"the {name} model generates a movement at a grade: give --grade")
    if args.caption is not None and args.grade is not None:
        raise ValueError("--grade goes with --movement (a free caption is used as given)")
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, got {args.num_samples}")
    for key in ("guidance", "sampler", "steps"):
        if getattr(args, key) is not None:
            setattr(cfg.sampling, key, getattr(args, key))
    generator = stages.load_generator(cfg, name)
    n = args.num_samples
    if args.movement:
        length = args.length or stages.fms_lengths(cfg)[args.movement]
        grade = args.grade or 2          # the base model ignores it; it only labels the files
        motions = generator.generate_fms([args.movement] * n, [grade] * n, [length] * n,
                                         args.seed, progress)
        label = f"{args.movement}_grade{args.grade}" if args.grade else args.movement
        caption = generator.caption(args.movement, grade)
    else:
        length = args.length or 120
        motions = generator.generate([args.caption] * n, [length] * n, args.seed,
                                     progress=progress)
        label, caption = "caption", args.caption
    out = args.out or cfg.run_dir / "samples" / f"{name}_{label}"
    info = {"caption": caption, "model": name, "movement": args.movement, "grade": args.grade,
            "length": length, "seed": args.seed, "guidance": cfg.sampling.guidance}
    write_folder(out, motions, info, animate=not args.no_animation)
    print(f"{n} motion(s) for {caption!r} from the {name} model -> {out}")
    return out


def _check_fresh(cfg, name: str, resume: bool) -> None:
    """Training over an earlier run's checkpoints needs --resume, so none is overwritten."""
    latest = stages.latest_checkpoint(stages.model_dir(cfg, name))
    if latest is not None and not resume:
        raise ValueError(f"{latest.parent} already holds checkpoints (latest {latest.name}): "
                         "pass --resume to continue that run")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    progress = not args.quiet
    try:
        cfg = load_profile(args.profile, args.data_root)
        if args.command == "data":
            _data(cfg, progress)
        elif args.command == "pretrain":
            _check_fresh(cfg, stages.BASE, args.resume)
            log = stages.pretrain(cfg, progress=progress)
            print(f"base model: step {log[-1]['step']}, loss {log[-1]['loss']:.4f} -> "
                  f"{stages.model_dir(cfg, stages.BASE)}")
        elif args.command == "finetune":
            _check_fresh(cfg, args.style, args.resume)
            log = stages.finetune(cfg, args.style, progress=progress)
            print(f"{args.style} model: step {log[-1]['step']}, loss {log[-1]['loss']:.4f} -> "
                  f"{stages.model_dir(cfg, args.style)}")
        elif args.command == "sample":
            _sample(cfg, args, progress)
        elif args.command == "bench":
            result = run_bench(cfg.bench, cfg.run_dir / "bench.json", progress=progress)
            print(f"sampling speedup {result['sampling_speedup']:.1f}x, training speedup "
                  f"{result['training_speedup']:.2f}x -> {cfg.run_dir / 'bench.json'}")
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
