"""Two builds' numbers compared, key by key: how a change that must not alter behaviour is checked.

`python -m fmsnb.publish.compare RUN_A RUN_B` reads the metrics JSON files of two run folders
(`runs/<profile>/`, or their `metrics/` folders) and prints every number or text that differs, by
file and key path, and the files only one of them has. What differs from build to build by its
nature is left out: wall-clock times and speeds (keys naming seconds, speed-ups, rates, dates) and
the run folder's own path inside texts. Exit status 0 when everything else is equal to the last
digit, 1 when something differs, 2 when a folder holds no metrics.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

# Keys whose values are measurements of time, not results.
TIMING = re.compile(r"second|speedup|per_second|date|duration|load_average", re.IGNORECASE)


def metrics_dir(run: Path) -> Path:
    """The metrics folder of run folder `run` (or `run` itself when it is one)."""
    return run / "metrics" if (run / "metrics").is_dir() else run


def leaves(value, path: tuple = ()):
    """(key path, value) of every number, text, bool or null inside nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, path + (str(key),))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, path + (str(i),))
    else:
        yield path, value


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON file ({err})") from None


def differences(run_a: Path, run_b: Path) -> list[str]:
    """One line per differing leaf or missing file of the two runs' metrics JSON files."""
    dirs = [metrics_dir(Path(r)) for r in (run_a, run_b)]
    files = [{p.name: p for p in d.glob("*.json")} for d in dirs]
    for d, found in zip(dirs, files):
        if not found:
            raise FileNotFoundError(f"{d}: no metrics JSON files")
    roots = [str(Path(r).resolve()) for r in (run_a, run_b)]
    out = [f"{name}: only in {dirs[i]}" for i in (0, 1)
           for name in sorted(set(files[i]) - set(files[1 - i]))]
    for name in sorted(set(files[0]) & set(files[1])):
        a, b = ({k: v for k, v in leaves(_read(f[name]))
                 if not any(TIMING.search(part) for part in k)} for f in files)
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
            if isinstance(va, str) and isinstance(vb, str):
                va, vb = va.replace(roots[0], "<run>"), vb.replace(roots[1], "<run>")
            if va != vb and not (_is_nan(va) and _is_nan(vb)):
                out.append(f"{name}: {'.'.join(key)}: {va!r} != {vb!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmsnb.publish.compare",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args(argv)
    try:
        lines = differences(args.run_a, args.run_b)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines) if lines else "the metrics are equal (times left out)")
    print(f"{len(lines)} difference(s)")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
