"""The package's own code on a chapter's page: a function's or class's source as a listing.

Chapters teach the method by showing the code that runs it, read from the installed package at
the moment the page is built, so the page cannot drift from the code the way a hand-written
description can. `listing(obj)` gives the source as a Markdown code block headed by the file and
line it comes from, for `IPython.display.display`.
"""
from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

from IPython.display import Markdown

import fmsnb


def listing(obj) -> Markdown:
    """The source of `obj` (a function, method or class of fmsnb) as a Markdown code block,
    dedented, under a line naming its module path and first line number."""
    lines, first = inspect.getsourcelines(obj)
    where = Path(inspect.getfile(obj)).resolve().relative_to(
        Path(fmsnb.__file__).resolve().parent.parent).as_posix()
    code = textwrap.dedent("".join(lines)).rstrip("\n")
    return Markdown(f"`{where}`, line {first}:\n\n```python\n{code}\n```")
