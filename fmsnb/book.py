"""Building the book: execute the chapter notebooks with papermill, then render with Jupyter Book.

The chapters are the entries of `_toc.yml` under `book/notebooks/`, in toc order. Chapter NAME's
source is `notebooks/NAME.ipynb` (parameterised: a cell tagged `parameters` sets `profile` and
`data_root`); papermill runs it with the chosen profile, from the repository root, into the
executed copy `book/notebooks/NAME.ipynb`, which is what Jupyter Book renders (its own execution
is off). Adding a chapter is therefore one toc line. `make book` runs
`python -m fmsnb.book --profile PROFILE [--data-root DIR]`; a failing cell stops the run with the
cell's error and a non-zero exit status, and Jupyter Book runs in nit-picky mode with warnings as
errors, so a broken reference fails the build instead of leaving a silently broken page.
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

from fmsnb.config import load_profile, repo_root

SOURCE_DIR = "notebooks"
EXECUTED_DIR = "book/notebooks"
REQUIRED_PARAMETERS = ("profile", "data_root")
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


def _select(chapters: list[Chapter], only: str | None) -> list[Chapter]:
    if only is None:
        return chapters
    chosen = [c for c in chapters if c.name == Path(only).stem]
    if not chosen:
        raise ValueError(f"--only {only}: not a chapter of _toc.yml "
                         f"(chapters: {[c.name for c in chapters]})")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmsnb.book",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default",
                        help="params/<profile>.yml to run with (default: default)")
    parser.add_argument("--data-root", default=None,
                        help="folder holding HumanML3D/ and FMS/ (the full profile's real data)")
    parser.add_argument("--only", default=None, help="execute only this chapter (name or path)")
    parser.add_argument("--no-build", action="store_true", help="execute, but skip the HTML build")
    parser.add_argument("--root", type=Path, default=None,
                        help="repository root (default: found from the working directory)")
    args = parser.parse_args(argv)

    root = (args.root or repo_root()).resolve()
    data_root = str(Path(args.data_root).expanduser().resolve()) if args.data_root else None
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
