"""Files and folders written whole or not at all, and torch files read with one kind of error.

`write` hands a temporary file in the target's folder to a `dump` function, then renames it over
the target (`os.replace`, atomic on one file system), so that a crash or a kill mid-write leaves
the previous file intact and the temporary one removed; `write_text` does it for text and
`torch_save` for trained weights (checkpoints, the evaluator), the only files synced to disk
(their loss costs training time; other files are cheap to remake). A folder is written the same
way: in a `temporary_folder` beside it, then renamed into place by `replace_folder`; the
temporaries carry TEMP_MARK in their names, so that those a killed run left are swept without
ever touching a folder of the user's. `torch_load` reads a torch file on the CPU and turns
whatever the unpickler raises on junk into one ValueError that says what the file should have
been.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

# In the name of every temporary folder fmsnb makes beside a target (`.NAME.fmsnb-tmp-XXXXXXXX`),
# so that sweeping the ones a killed run left never matches a folder of the user's (`.NAME.old`).
TEMP_MARK = ".fmsnb-tmp-"


def write(path, dump: Callable[[BinaryIO], object], fsync: bool = False) -> Path:
    """Write `path` by `dump(f)` on a temporary binary file beside it, then rename it into
    place; returns the path. The temporary file is removed when `dump` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            dump(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    """`write` of UTF-8 text."""
    return write(path, lambda f: f.write(text.encode()))


@contextmanager
def temporary_folder(target) -> Iterator[Path]:
    """A new empty hidden folder `.NAME.fmsnb-tmp-XXXXXXXX` beside folder `target` (on its file
    system, so that renames out of it are atomic), removed with whatever is left in it on exit.
    The temporaries that killed earlier calls left beside `target` are removed first: only
    those, recognised by TEMP_MARK."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}{TEMP_MARK}*"):
        shutil.rmtree(stale)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{TEMP_MARK}"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(tmp: Path, target) -> Path:
    """Rename folder `tmp` (a `temporary_folder(target)`) to `target`; returns it. A folder at
    `target` is first renamed aside to a temporary name and removed after, so that a kill
    between the two renames leaves it to the next sweep."""
    target = Path(target)
    old = tmp.with_name(tmp.name + ".old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def torch_save(obj, path) -> Path:
    """`torch.save(obj)` to `path` by `write`, synced; returns the path."""
    import torch        # here, not at the top: writing JSON or text needs no torch
    return write(path, lambda f: torch.save(obj, f), fsync=True)


def torch_load(path, what: str, weights_only: bool = True):
    """`torch.load(path)` on the CPU; any failure to read it is ValueError("<what> (<error>)")."""
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:        # the unpickler fails on junk in many ways (KeyError, ...)
        raise ValueError(f"{what} ({type(err).__name__}: {err})") from err
