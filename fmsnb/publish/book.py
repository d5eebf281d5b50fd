"""Building the book: execute the chapter notebooks with papermill, then render with Jupyter Book.

The chapters are the entries of `_toc.yml` under `book/notebooks/`, in toc order. Chapter NAME's
source is `notebooks/NAME.ipynb` (parameterised: a cell tagged `parameters` sets `profile` and
`data_root`); papermill runs it with the chosen profile, from the repository root, into the
executed copy `book/notebooks/NAME.ipynb`, which is what Jupyter Book renders (its own execution
is off). Adding a chapter is therefore one toc line. `make book` runs
`python -m fmsnb.publish.book --profile PROFILE [--data-root DIR]`; a failing cell stops the run
with the cell's error and a non-zero exit status, and Jupyter Book runs in nit-picky mode with
warnings as errors, so a broken reference fails the build instead of leaving a silently broken
page.
`--dry-run` checks everything a run needs (profile, data root, notebooks) and prints the plan
without executing anything.

Two more pieces serve the built book. Every chapter's first code cell after its parameters is
`COLAB_CELL`, which on Google Colab only fetches this repository and installs the package from
it (a cell cannot import fmsnb to do that, since fmsnb is what it installs). And this module is
also a Sphinx extension (`setup`, listed in _config.yml): Jupyter Book builds a chapter's Colab
button from the page's own path, which is the executed copy `book/notebooks/NAME.ipynb`, not in
git; the extension points the button at the source `notebooks/NAME.ipynb` instead.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import papermill
import yaml

from fmsnb import corpora, fms
from fmsnb.config import Profile, load_profile, repo_root
from fmsnb.sample import step_count

SOURCE_DIR = "notebooks"
EXECUTED_DIR = "book/notebooks"
REQUIRED_PARAMETERS = ("profile", "data_root")
# The same in every chapter, right after the parameters cell (a test checks). Self-contained:
# on Colab the package is not installed yet when it runs. Off Colab it does nothing, so it is
# tagged `remove-cell` and the rendered pages leave it out.
COLAB_CELL = """\
# On Google Colab only: get this repository (code and params/ profiles), install it, work in it.
import os, subprocess, sys
colab_repo, colab_dir = "https://github.com/fmsnb/fmsnb", "/content/fmsnb"
if "google.colab" in sys.modules and not os.path.isdir(colab_dir):
    subprocess.run(["git", "clone", "-q", colab_repo, colab_dir], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", colab_dir], check=True)
if "google.colab" in sys.modules:
    os.chdir(colab_dir)"""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Chapter:
    """One executed chapter: its toc entry, its source notebook and its executed copy."""
    name: str
    source: Path
    executed: Path


def toc_entries(node) -> list[str]:
    """Every `root`/`file` entry of a jb-book toc (nested mappings and lists), in order."""
    if isinstance(node, list):
        return [entry for item in node for entry in toc_entries(item)]
    if not isinstance(node, dict):
        return []
    entries = [str(node[key]) for key in ("root", "file") if key in node]
    for key in ("parts", "chapters", "sections"):
        entries += toc_entries(node.get(key))
    return entries


def toc_chapters(root: Path, toc: Path | None = None) -> list[Chapter]:
    """The notebook chapters listed in `toc` (default `root/_toc.yml`), in toc order."""
    root = Path(root)
    toc = Path(toc) if toc is not None else root / "_toc.yml"
    if not toc.is_file():
        raise FileNotFoundError(f"no table of contents at {toc}")
    with open(toc) as f:
        spec = yaml.safe_load(f) or {}
    if not isinstance(spec, dict) or spec.get("format") != "jb-book":
        raise ValueError(f"{toc}: expected a Jupyter Book toc with `format: jb-book`")
    chapters = []
    for entry in toc_entries(spec):
        entry = entry.removesuffix(".ipynb")
        folder, _, name = entry.rpartition("/")
        if folder != EXECUTED_DIR:
            continue
        source = root / SOURCE_DIR / f"{name}.ipynb"
        if not source.is_file():
            raise FileNotFoundError(f"{toc}: chapter {entry!r} has no source notebook {source}")
        chapters.append(Chapter(name, source, root / EXECUTED_DIR / f"{name}.ipynb"))
    return chapters


def _check_parameters(source: Path) -> None:
    """A chapter must declare `profile` and `data_root` in a cell tagged `parameters`."""
    declared = papermill.inspect_notebook(str(source))
    missing = [p for p in REQUIRED_PARAMETERS if p not in declared]
    if missing:
        raise ValueError(f"{source}: no {missing} in a cell tagged `parameters`")


def execute(chapter: Chapter, profile: str, data_root: str | None, root: Path) -> None:
    """Run one chapter's source with papermill into its executed copy, cwd = `root`.

    Raises papermill.PapermillExecutionError when a cell fails; the executed copy then holds the
    notebook up to and including the failing cell.
    """
    _check_parameters(chapter.source)
    chapter.executed.parent.mkdir(parents=True, exist_ok=True)
    # Progress bars in a saved notebook become widget outputs that need CDN scripts to render;
    # the kernel inherits this process's environment, where tqdm reads TQDM_DISABLE.
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        papermill.execute_notebook(
            str(chapter.source), str(chapter.executed),
            parameters={"profile": profile, "data_root": data_root},
            cwd=str(root), kernel_name="python3", progress_bar=False)
    finally:
        if previous is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = previous


def describe_failure(source: Path, err) -> str:
    """A readable account of a papermill cell failure: the notebook, the cell and the traceback."""
    return (f"{source}: a cell failed (execution count {err.exec_count}).\n"
            f"{_ANSI.sub('', str(err)).strip()}")


def build_html(root: Path) -> Path:
    """Jupyter Book 1.x over `root` (its _config.yml and _toc.yml); returns the index page.

    Every page is rebuilt (`--all`) so that each build reports every warning; nit-picky mode
    turns missing references into warnings and `-W` turns warnings into a failed build.
    """
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root),
           "--all", "-W", "-n", "--keep-going"]
    result = subprocess.run(cmd)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book build {root} failed (exit {result.returncode}); "
                           "its warnings and errors are printed above")
    return root / "_build" / "html" / "index.html"


def missing_data(cfg: Profile) -> list[str]:
    """What the profile's real data lacks, one line each; empty when everything is in place.

    With a data root: `HumanML3D/` with the files `corpora` reads, and `FMS/` with a skeleton
    folder per configured view and the expert scores. With or without one: every optional file
    the profile names (CLIP weights, the published evaluator's files, MDM's release and its
    args.json), which must exist; a relative one needs a data root to be found under.
    """
    named = [("text.weights (CLIP weights)", cfg.text.weights)] if cfg.text.weights else []
    named += [(f"evaluator_files.{key}", value)
              for key, value in vars(cfg.evaluator_files).items() if value]
    if cfg.mdm_release:
        named += [("mdm_release (MDM's released model)", cfg.mdm_release),
                  ("mdm_release's args.json", str(Path(cfg.mdm_release).with_name("args.json")))]
    missing, rootless = [], []
    for what, path in named:
        found = cfg.data_file(path)
        if found is None:
            rootless.append(f"{what}: {path}")
        elif not found.exists():
            missing.append(f"{found}: missing ({what})")
    if rootless:
        missing.insert(0, f"no --data-root, but the profile names files under it "
                          f"({'; '.join(rootless)})")
    if not cfg.uses_real_data:
        return missing
    root = Path(cfg.data_root)
    lacking = [] if root.is_dir() else [f"{root}: the data root is not a folder"]
    hml = root / "HumanML3D"
    lacking += [f"{hml / name}: missing" for name in corpora.HUMANML3D_FILES
                if not (hml / name).exists()]
    if (hml / "new_joint_vecs").is_dir() and not any((hml / "new_joint_vecs").glob("*.npy")):
        lacking.append(f"{hml / 'new_joint_vecs'}: no .npy feature files in it")
    raw = root / "FMS"
    for view in cfg.fms.views:
        folder = raw / "Skeleton data" / fms.VIEW_FOLDERS[view]
        if not folder.is_dir():
            lacking.append(f"{folder}: missing (the {view} view's skeleton files)")
        elif not any(folder.glob("*.json")):
            lacking.append(f"{folder}: no .json skeleton files in it")
    if not (raw / "experts_score.json").is_file():
        lacking.append(f"{raw / 'experts_score.json'}: missing (the expert grades)")
    return lacking + missing


def plan(cfg: Profile, chapters: list[Chapter], root: Path) -> str:
    """What a run would do: the profile's main settings, then each notebook in order."""
    m, pre, fine, smp, ev = cfg.model, cfg.pretrain, cfg.finetune, cfg.sampling, cfg.evaluation
    n = step_count(cfg.diffusion, smp.sampler, smp.steps)
    sampler = (f"ddpm ({n} steps)" if smp.sampler == "ddpm"
               else f"ddim ({n} of {cfg.diffusion.steps} steps)")
    lines = [
        f"profile {cfg.name} (params/{cfg.name}.yml), seed {cfg.seed}",
        f"  data:       {corpora.describe(cfg)}",
        f"  runs:       {cfg.run_dir}",
        f"  text:       {cfg.text.encoder}"
        + (f" ({cfg.text.weights})" if cfg.text.weights else ""),
        f"  model:      MDM latent {m.latent_dim}, {m.layers} layers, {m.heads} heads, "
        f"feed-forward {m.ff_size}",
        f"  pretrain:   {pre.steps} steps, batch {pre.batch_size}, lr {pre.lr:g}",
        "  base:       " + (f"MDM's release {cfg.mdm_release} (fine-tunes start from it)"
                             if cfg.mdm_release else "the pretrained model"),
        f"  finetune:   {fine.steps} steps, batch {fine.batch_size}, lr {fine.lr:g}, "
        f"styles {', '.join(cfg.styles)}",
        f"  fms:        views {', '.join(cfg.fms.views)}, {cfg.fms.policy} grades, "
        f"mirror {'on' if cfg.fms.mirror else 'off'}",
        f"  sampling:   {sampler}, guidance {smp.guidance}",
        f"  evaluation: {ev.replications} replications of {ev.samples} samples; "
        f"{cfg.generation.per_cell} generated motions per movement and grade",
        f"would execute {len(chapters)} notebook(s) with papermill:",
    ]
    lines += [f"  [{i}/{len(chapters)}] {c.source.relative_to(root)} -> "
              f"{c.executed.relative_to(root)}" for i, c in enumerate(chapters, 1)]
    lines.append(f"then build the HTML: jupyter-book build {root} --all -W -n --keep-going")
    return "\n".join(lines)


def dry_run(profile: str, data_root: str | None, root: Path, only: str | None = None) -> int:
    """Check the profile, its data and the chapters, and print the plan; run nothing.

    Returns 0 when everything a run needs is in place, 2 after listing every missing thing.
    """
    problems = []
    try:
        cfg = load_profile(profile, data_root, root=root)
    except (FileNotFoundError, ValueError) as err:
        print(f"dry run: {err}", file=sys.stderr)
        return 2
    problems += missing_data(cfg)
    try:
        chapters = _select(toc_chapters(root), only)
    except (FileNotFoundError, ValueError) as err:
        chapters, problems = [], problems + [str(err)]
    for chapter in chapters:
        try:
            _check_parameters(chapter.source)
        except ValueError as err:
            problems.append(str(err))
    print(plan(cfg, chapters, root))
    if problems:
        print(f"\ndry run: {len(problems)} problem(s); nothing was run:", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    print("dry run: everything is in place; nothing was run")
    return 0


def source_launch_url(url: str, pagename: str) -> str:
    """A launch button's URL for page `pagename`, pointed at the chapter's source notebook.

    Jupyter Book builds the URL from the page's path, `.../book/notebooks/NAME.ipynb` for a
    chapter: that executed copy is not in the repository. This swaps it for
    `.../notebooks/NAME.ipynb`; other pages' URLs are returned unchanged.
    """
    folder, _, name = pagename.rpartition("/")
    if folder != EXECUTED_DIR:
        return url
    page = f"{EXECUTED_DIR}/{name}.ipynb"
    if not url.endswith(page):
        raise ValueError(f"launch URL {url!r} of page {pagename!r} does not end with {page!r}")
    return url[:-len(page)] + f"{SOURCE_DIR}/{name}.ipynb"


def _launch_source_notebooks(app, pagename, templatename, context, doctree) -> None:
    """Sphinx `html-page-context` handler, run after sphinx-book-theme adds its launch buttons."""
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if button.get("type") == "link":
                    button["url"] = source_launch_url(button["url"], pagename)


def setup(app) -> dict:
    """Sphinx extension entry point (`sphinx: extra_extensions: [fmsnb.publish.book]` in
    _config.yml)."""
    # sphinx-book-theme adds the launch buttons at priority 501; ours must run after it.
    app.connect("html-page-context", _launch_source_notebooks, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def _select(chapters: list[Chapter], only: str | None) -> list[Chapter]:
    if only is None:
        return chapters
    chosen = [c for c in chapters if c.name == Path(only).stem]
    if not chosen:
        raise ValueError(f"--only {only}: not a chapter of _toc.yml "
                         f"(chapters: {[c.name for c in chapters]})")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmsnb.publish.book",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default",
                        help="params/<profile>.yml to run with (default: default)")
    parser.add_argument("--data-root", default=None,
                        help="folder holding HumanML3D/ and FMS/ (the full profile's real data)")
    parser.add_argument("--only", default=None, help="execute only this chapter (name or path)")
    parser.add_argument("--no-build", action="store_true", help="execute, but skip the HTML build")
    parser.add_argument("--publish", action="store_true",
                        help="after executing every chapter, copy the run's metrics and chapter "
                             "times into book/results/<profile>/ for the default book to show")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the profile, data root and notebooks, print the plan, run "
                             "nothing (exit 2 listing what is missing)")
    parser.add_argument("--root", type=Path, default=None,
                        help="repository root (default: found from the working directory)")
    args = parser.parse_args(argv)

    root = (args.root or repo_root()).resolve()
    data_root = str(Path(args.data_root).expanduser().resolve()) if args.data_root else None
    if args.dry_run:
        return dry_run(args.profile, data_root, root, args.only)
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"--data-root {data_root} is not a folder")
    load_profile(args.profile, data_root, root=root)    # fail now, not in every notebook
    chapters = toc_chapters(root)
    todo = _select(chapters, args.only)
    started = time.perf_counter()
    for i, chapter in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {chapter.source.relative_to(root)} (profile {args.profile}) ...",
              flush=True)
        tick = time.perf_counter()
        try:
            execute(chapter, args.profile, data_root, root)
        except papermill.PapermillExecutionError as err:
            print(f"\n{describe_failure(chapter.source, err)}\n\n"
                  f"The notebook as executed up to the failure: {chapter.executed}",
                  file=sys.stderr, flush=True)
            return 1
        seconds = time.perf_counter() - tick
        print(f"      -> {chapter.executed.relative_to(root)} in {seconds:.1f} s", flush=True)
    print(f"executed {len(todo)} notebook(s) in {time.perf_counter() - started:.1f} s", flush=True)
    if args.publish:
        # torch and the models: imported only when publishing
        from fmsnb.publish import performance, report
        cfg = load_profile(args.profile, data_root, root=root)
        times = performance.chapter_times(root / EXECUTED_DIR, [c.name for c in chapters])
        folder = report.publish(cfg, {t.name: t.seconds for t in times if t.profile == cfg.name})
        print(f"published the run's metrics and chapter times to {folder}", flush=True)

    if args.no_build:
        return 0
    missing = [c.executed for c in chapters if not c.executed.is_file()]
    if missing:
        print(f"not building the HTML: no executed copy yet of {[str(m) for m in missing]}; "
              "run without --only first", file=sys.stderr)
        return 1
    tick = time.perf_counter()
    try:
        index = build_html(root)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"built the HTML in {time.perf_counter() - tick:.1f} s: {index}")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
