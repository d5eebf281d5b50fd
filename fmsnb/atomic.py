"""Files written whole or not at all: the one way this package replaces a file it owns.

`write` hands a temporary file in the target's folder to a `dump` function, then renames it over
the target (`os.replace`, atomic on one file system), so that a crash or a kill mid-write leaves
the previous file intact and the temporary one removed; `write_text` does it for text. Only
checkpoints ask for `fsync` (their loss costs training time); other files are cheap to remake.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


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
