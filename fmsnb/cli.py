"""The command line: `python -m fmsnb <command>`, the same functions the notebooks call.

Commands: `data` (make or check the run's corpora), `pretrain`, `finetune`, `sample` (motions
for a caption or an FMS movement at a grade, written as joints, features and an animation),
`bench` (the performance benchmark) and `device-check` (training and sampling speed on a device
and the profile's extrapolated wall time). Every command takes `--profile` and `--data-root`;
those that run a model take `--device`. `pretrain` and `finetune` also run under torchrun, one
process per GPU (`fmsnb.distributed`); only rank 0 prints and writes. Bad
input (an unknown style or movement, a grade outside 1-3, a length the model cannot make, a
checkpoint of another configuration, a corrupt file, an --out folder holding other files) ends
with a message and exit code 2, and nothing is written half-way (`sample.write_folder`). Ctrl-C
or SIGTERM ends a command with one line (for training: where the last checkpoint is) and exit
code 130, after removing its temporary files. book/hard_edges.md lists every case the tests try.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from fmsnb import align, corpora, distributed, stages, sweep
from fmsnb.captions import STYLES
from fmsnb.config import load_profile
from fmsnb.fms import GRADES, MOVEMENTS, skip_counts
from fmsnb.publish import devicecheck
from fmsnb.publish.bench import run_bench
from fmsnb.sample import write_folder
from fmsnb.train import check_device, config_differences, default_device


def _checked(convert, rule: str, ok):
    """An argparse type: convert, then `ok(value)` or exit 2 with a one-line reason."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
        return value
    return parse


FINITE = _checked(float, "must be a finite number", math.isfinite)
FRAMES = _checked(int, "must be a whole number of frames, at least 1", lambda n: n >= 1)
COUNT = _checked(int, "must be a whole number, at least 1", lambda n: n >= 1)
TEXT = _checked(str, "must hold some text", lambda s: bool(s.strip()))
PARALLEL = ("pretrain", "finetune")      # the commands that run under torchrun


def _device(text: str):
    """An argparse type: a device this machine has (`train.check_device`), or exit 2 saying
    why not."""
    try:
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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

    def device(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", type=_device, default=None,
                       help="cpu, cuda or cuda:N (default: cuda if there is a GPU, else cpu); "
                            "under torchrun, cuda means each process's own GPU")

    command("data", "make the run's corpora (stand-ins) or check the real ones, and report them")
    p = command("pretrain", "pretrain the base MDM on the HumanML3D-layout corpus")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint of an earlier run")
    device(p)
    p = command("finetune", "fine-tune the base model on the FMS corpus with one style")
    p.add_argument("--style", required=True, choices=[s for s in STYLES if s != "none"],
                   help="how the FMS grade reaches the model")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="the base model to start from instead of the run's (its pretrained one, "
                        "or the profile's mdm_release): an "
                        "fmsnb checkpoint, or mdm:PATH for MDM's released model (PATH e.g. "
                        "humanml_trans_enc_512/model000200000.pt, its args.json beside it; "
                        "imported into runs/<profile>/models/mdm/); give it again with --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint of an earlier run")
    device(p)
    p = command("sample", "generate motions for a caption, or an FMS movement at a grade")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--caption", type=TEXT, help="free text, used as given")
    what.add_argument("--movement", choices=list(MOVEMENTS), metavar="{m01..m15}",
                      help="an FMS movement; the caption follows the model's style: " + "; ".join(
                          f"{m.code} {m.test} ({m.variant})" for m in MOVEMENTS.values()))
    p.add_argument("--grade", type=int, choices=GRADES,
                   help="FMS grade to ask for (with --movement; needed by fine-tuned models)")
    p.add_argument("--style", default="none", choices=list(STYLES),
                   help="which model: none = the base model, else the model fine-tuned with "
                        "that style (default: %(default)s)")
    p.add_argument("--length", type=FRAMES, default=None,
                   help="frames at 20 fps, from 1 to the model's max_len (196 unless the profile "
                        "says otherwise; default: 120, or the movement's typical length)")
    p.add_argument("--num-samples", type=COUNT, default=1, help="motions to generate")
    p.add_argument("--guidance", type=FINITE, default=None,
                   help="classifier-free guidance scale, a finite number (default: the profile's)")
    p.add_argument("--sampler", choices=("ddim", "ddpm"), default=None,
                   help="ddim (respaced, fast) or ddpm (every diffusion step)")
    p.add_argument("--steps", type=COUNT, default=None,
                   help="DDIM steps, at least 1 (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/<profile>/samples/<name>)")
    p.add_argument("--no-animation", action="store_true", help="write only the .npy files")
    device(p)
    command("bench", "measure training and sampling speed: ours against MDM's way (on the CPU)")
    p = command("device-check", "time the profile's training step and both samplers on a "
                                "device and extrapolate the profile's wall time")
    device(p)
    p.add_argument("--steps", type=COUNT, default=10,
                   help="timed steps per measurement, after one warm-up step (default: "
                        "%(default)s)")
    p.add_argument("--batch", type=COUNT, action="append", default=[],
                   help="a further training batch size to time (repeatable), e.g. the "
                        "per-process share B/N of N processes under torchrun")
    p.add_argument("--out", type=Path, default=None,
                   help="the JSON file (default: runs/<profile>/device_check.json)")
    p = command("sweep", "train a variant of the profile and probe its quality "
                         "(rows appended to runs/<profile>/sweep.json)")
    p.add_argument("--variant", required=True, help="the variant's name (its folder)")
    p.add_argument("--stage", choices=sweep.STAGES, default="finetune",
                   help="what the variant trains (default: %(default)s, from the profile's base)")
    p.add_argument("--style", action="append", choices=[s for s in STYLES if s != "none"],
                   help="fine-tuning style (repeatable; default: the profile's styles)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="a changed setting, e.g. finetune.lr=1e-3 (repeatable)")
    return parser


def _data(cfg, progress: bool) -> None:
    print("data:", corpora.describe(cfg))
    print("HumanML3D-layout corpus:", corpora.humanml3d_root(cfg, progress))
    print("FMS recordings:", corpora.fms_raw_root(cfg, progress))
    corpus = corpora.fms_corpus_root(cfg, progress)
    print("FMS corpus in HumanML3D layout:", corpus)
    summary = corpus / align.SUMMARY_FILE
    skipped = json.loads(summary.read_text())["skipped"]
    if skipped:
        print(f"skipped {len(skipped)} FMS inputs (all listed in {summary}):")
        for line in skip_counts(skipped):
            print("  " + line)


def _sample(cfg, args, progress: bool) -> Path:
    name = stages.BASE if args.style == "none" else args.style
    if args.movement and args.grade is None and name != stages.BASE:
        raise ValueError(f"the {name} model generates a movement at a grade: give --grade")
    if args.caption is not None and args.grade is not None:
        raise ValueError("--grade goes with --movement (a free caption is used as given)")
    for key in ("guidance", "sampler", "steps"):
        if getattr(args, key) is not None:
            setattr(cfg.sampling, key, getattr(args, key))
    generator = stages.load_generator(cfg, name, device=args.device)
    expected = asdict(stages.model_config(cfg, generator.model.cfg.text_dim, generator.style))
    differs = config_differences(expected, asdict(generator.model.cfg))
    if differs:
        print(f"note: the {name} checkpoint's model is not the profile's (profile -> checkpoint: "
              f"{'; '.join(differs)}); sampling with the checkpoint's", file=sys.stderr)
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
    write_folder(out, motions, info, animate=not args.no_animation, progress=progress)
    size = generator.model.cfg
    print(f"{n} motion(s) for {caption!r} from the {name} model (latent_dim {size.latent_dim}, "
          f"layers {size.layers}) -> {out}")
    return out


def _check_fresh(cfg, name: str, resume: bool) -> None:
    """Training over an earlier run's checkpoints needs --resume, so none is overwritten."""
    latest = stages.latest_checkpoint(stages.model_dir(cfg, name))
    if latest is not None and not resume:
        raise ValueError(f"{latest.parent} already holds checkpoints (latest {latest.name}): "
                         "pass --resume to continue that run")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    progress = not args.quiet
    # SIGTERM unwinds like Ctrl-C, so that temporary files and folders are removed on the way out
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        cfg = load_profile(args.profile, args.data_root)
        if distributed.launched() and args.command not in PARALLEL:
            raise ValueError(f"only {' and '.join(PARALLEL)} run on several processes; run "
                             f"{args.command!r} without torchrun")
        if args.command in PARALLEL:
            args.device = distributed.start(args.device or default_device())
        rank0 = distributed.current().main      # the one process that prints
        if args.command == "data":
            _data(cfg, progress)
        elif args.command == "pretrain":
            _check_fresh(cfg, stages.BASE, args.resume)
            log = stages.pretrain(cfg, progress=progress, device=args.device)
            if rank0:
                print(f"base model: step {log[-1]['step']}, loss {log[-1]['loss']:.4f} -> "
                      f"{stages.model_dir(cfg, stages.BASE)}")
        elif args.command == "finetune":
            _check_fresh(cfg, args.style, args.resume)
            log = stages.finetune(cfg, args.style, progress=progress, init_from=args.init_from,
                                  device=args.device)
            if rank0:
                print(f"{args.style} model: step {log[-1]['step']}, loss {log[-1]['loss']:.4f} "
                      f"-> {stages.model_dir(cfg, args.style)}")
        elif args.command == "sample":
            _sample(cfg, args, progress)
        elif args.command == "sweep":
            for row in sweep.run(cfg, args.variant, args.set, args.stage,
                                 args.style or cfg.styles, progress):
                print(json.dumps(row))
        elif args.command == "bench":
            result = run_bench(cfg.bench, cfg.run_dir / "bench.json", progress=progress)
            print(f"sampling speedup {result['sampling_speedup']:.1f}x, training speedup "
                  f"{result['training_speedup']:.2f}x -> {cfg.run_dir / 'bench.json'}")
        elif args.command == "device-check":
            out = args.out or cfg.run_dir / "device_check.json"
            result = devicecheck.run_check(cfg, args.device or default_device(), args.steps,
                                           out, args.batch, progress)
            print("\n".join(devicecheck.report(result)) + f"\n-> {out}")
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"interrupted: {stop}" if str(stop) else "interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        distributed.stop()
    return 0
