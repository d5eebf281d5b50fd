"""Quality against training minutes: the sweep benchmark behind the settings of params/*.yml.

One call trains one variant of a profile, the profile with some settings changed
(`--set finetune.lr=1e-3`), in its own folder `runs/<profile>/sweep/<variant>/`. That folder
shares the profile's corpora, caption cache and evaluator unless its settings change them (a
larger FMS stand-in gets its own corpus), and its fine-tunes start from the profile's base
model unless the variant pretrains its own (`--stage pretrain`, or `both`). The trained models
are then probed with cheap yardsticks and one row per model (the variant's changes, its
training minutes, the measures) is appended to `runs/<profile>/sweep.json`:
- the base model: R-precision (top 3) and FID of the stand-in evaluator on
  `evaluation.samples` test captions, against the same for real test clips;
- the real FMS clips (a fine-tuning variant's first row): the grade of the held-out subjects'
  clips named by chapter 06's LSTM and by a forest, both trained on the training subjects;
- a fine-tuned model: `generation.per_cell` motions per (movement, grade), recognised by random
  forests trained on the real training subjects (movement of 15, FMS test of 7, grade of 3;
  `grading.movement_recognition`, `grading.forest_baseline`) and their grade by that LSTM,
  and the deep squat's upright share and depth per grade (`physics.squat_depth`).
The command line is `python -m fmsnb sweep`; chapter 08 shows the rows.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from fmsnb import atomic, corpora, grading, physics, stages, t2m_protocol, table1
from fmsnb.captions import STYLES
from fmsnb.classifier import GradeClassifier
from fmsnb.config import Profile, with_values
from fmsnb.dataset import read_split
from fmsnb.fms import GRADES
from fmsnb.humanml3d import recover_joints
from fmsnb.train import SUMMARY_FILE

SWEEP_FILE = "sweep.json"
STAGES = ("pretrain", "finetune", "both")
# What a variant reads from the profile's run, and the profile sections each depends on: a
# variant that changes one of those sections makes its own copy instead (a link would let it
# overwrite the profile's corpus in place).
_BASE_MADE_FROM = ("standin", "text", "model", "pretrain")
SHARED = {"data/humanml3d_standin": ("standin",), "data/fms_raw": ("fms_standin",),
          "data/fms_hml": ("fms_standin", "fms"), "cache": (),   # keyed by encoder
          "evaluator": ("standin", "evaluator"),
          f"models/{stages.BASE}": _BASE_MADE_FROM,
          # a variant that changes only how motions are sampled or judged probes the
          # profile's own fine-tuned models
          **{f"models/{style}": (*_BASE_MADE_FROM, "fms_standin", "fms", "finetune")
             for style in STYLES if style != "none"}}


def with_settings(cfg: Profile, settings: list[str]) -> Profile:
    """`cfg` with "section.key=value" settings applied, each value read as YAML and checked
    like a profile file's (`config.with_values`: 1e-3 is a number, [front] a list); ValueError
    naming the setting, its section and key."""
    for setting in settings:
        path, sep, text = setting.partition("=")
        section, dot, key = path.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {setting!r}: expected section.key=value, e.g. finetune.lr=1e-3")
        part = getattr(cfg, section, None)
        if not dataclasses.is_dataclass(part):
            raise ValueError(f"--set {setting!r}: the profile has no section {section!r}")
        changed = with_values(part, {key: yaml.safe_load(text)}, f"--set {setting!r}", section)
        cfg = dataclasses.replace(cfg, **{section: changed})
    return cfg


def variant(cfg: Profile, name: str, settings: list[str], own_base: bool) -> Profile:
    """The profile of variant `name`: `settings` applied, its run folder under the profile's
    `sweep/`. It shares (through symbolic links) each corpus, the caption cache, the evaluator
    and, unless `own_base`, the base and fine-tuned models of the profile's run, except what
    its settings change (SHARED), which it makes itself. ValueError for a fine-tune-only variant whose
    settings change what the base model is trained from."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"variant name {name!r}: use a plain folder name")
    out = dataclasses.replace(with_settings(cfg, settings))     # a copy, even unchanged
    changed = {f.name for f in dataclasses.fields(cfg) if f.init
               and getattr(cfg, f.name) != getattr(out, f.name)}
    base = f"models/{stages.BASE}"
    if not own_base and changed & set(SHARED[base]):
        raise ValueError(f"variant {name!r} changes {sorted(changed & set(SHARED[base]))}, "
                         "which the base model is trained with: use --stage both")
    run_dir = cfg.run_dir / "sweep" / name
    out.run_path = run_dir
    for rel, sections in SHARED.items():
        if changed & set(sections) or (own_base and rel.startswith("models/")):
            continue
        link, target = run_dir / rel, cfg.run_dir / rel
        target.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and not link.is_symlink():
            os.symlink(target.resolve(), link, target_is_directory=True)
    return out


def train_minutes(cfg: Profile, name: str) -> float:
    summary = json.loads((stages.model_dir(cfg, name) / SUMMARY_FILE).read_text())
    return summary["seconds"] / 60


def probe_base(cfg: Profile, progress: bool = False) -> dict:
    """R@3 and FID of the base model the variant pretrained (not a profile's MDM release) on
    `evaluation.samples` test captions, with the same for real test clips beside them
    (`t2m_protocol.t2m_table`, one replication, no multimodality: a quick reading, not Table 1)."""
    items = read_split(corpora.humanml3d_root(cfg, False), "test").items
    protocol = dataclasses.replace(cfg.evaluation, replications=1, allow_smaller=True)
    base = stages.load_generator(cfg, stages.BASE,
                                 checkpoint=stages.trained_checkpoint(cfg, stages.BASE))
    rows = t2m_protocol.t2m_table(table1.get_evaluator(cfg, progress), items,
                                  {"base": base.generate}, protocol, progress,
                                  multimodality_too=False)["rows"]
    return {f"{label}_{metric}": rows[row][metric][0] for label, row in
            (("real", t2m_protocol.GROUND_TRUTH), ("base", "base")) for metric in ("R@3", "FID")}


def probe_real(cfg: Profile, real: grading.GradedSet,
               progress: bool = False) -> tuple[dict, GradeClassifier]:
    """The grade of the held-out real subjects' clips, named by the profile's LSTM (chapter 06's
    classifier, trained on the real training subjects) and by a forest on the same clips; the
    trained LSTM is returned for the generated sets."""
    clf = grading.train_on(cfg, real, progress)
    forest = grading.forest_baseline(real, {}, cfg.seed)[grading.REAL]
    return {"grade_lstm": grading.score(clf, real)["accuracy"], "grade_accuracy": forest,
            "real_clips": len(real.grades)}, clf


def probe_finetuned(cfg: Profile, name: str, real: grading.GradedSet, clf: GradeClassifier,
                    progress: bool = False) -> dict:
    """Movement, FMS-test and grade recognition of model `name`'s generated FMS set by forests
    trained on the real training subjects, its grade named by the real-trained LSTM `clf`, and
    its deep squats (m01) per requested grade (`physics.squat_depth`: upright share, lowest
    pelvis height of the upright ones)."""
    data = grading.generated_set(cfg, name, progress)
    moves = grading.movement_recognition(real, {name: data}, cfg.seed)[name]
    out = {"movement_accuracy": moves["accuracy"], "test_accuracy": moves["test_accuracy"],
           "wrong_side": moves["wrong_side"],
           "grade_accuracy": grading.forest_baseline(real, {name: data}, cfg.seed)[name],
           "grade_lstm": grading.score(clf, data, part="all")["accuracy"]}
    for g in GRADES:
        pick = (data.movements == "m01") & (data.grades == g)
        squats = physics.squat_depth([recover_joints(data.features[i])
                                      for i in np.flatnonzero(pick)])
        out[f"squat_upright_g{g}"] = squats["upright_share"]
        out[f"squat_pelvis_g{g}"] = squats["lowest_pelvis_m"]
    return out


def run(cfg: Profile, name: str, settings: list[str], stage: str, styles: list[str],
        progress: bool = True) -> list[dict]:
    """Train variant `name` (`stage`: pretrain the base, fine-tune `styles`, or both), probe
    its models and append their rows to `runs/<profile>/sweep.json`; returns the rows."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    var = variant(cfg, name, settings, own_base=stage != "finetune")
    rows, started = [], time.strftime("%Y-%m-%d %H:%M")
    command = " ".join(["python -m fmsnb sweep", f"--profile {cfg.name}", f"--variant {name}",
                        f"--stage {stage}", *[f"--style {s}" for s in styles],
                        *[f"--set {s}" for s in settings]])
    # The minutes depend on the threads: two torch processes on two cores run ten times slower.
    common = {"variant": name, "settings": settings, "date": started, "command": command,
              "threads": torch.get_num_threads()}
    if stage in ("pretrain", "both"):
        log = stages.pretrain(var, progress=progress)
        rows.append({**common, "model": stages.BASE, "steps": log[-1]["step"],
                     "final_loss": log[-1]["loss"], "minutes": train_minutes(var, stages.BASE),
                     **probe_base(var, progress)})
    if stage in ("finetune", "both"):
        real = grading.real_set(var, progress)
        measures, clf = probe_real(var, real, progress)
        rows.append({**common, "model": grading.REAL, **measures})
        logs = stages.finetune_styles(var, styles, progress)
        processes = stages.style_workers(var, styles)
        for style in styles:
            log = logs[style]
            trained = {"steps": log[-1]["step"], "final_loss": log[-1]["loss"],
                       "minutes": train_minutes(var, style), "processes": processes,
                       **({"threads": 1} if processes > 1 else {})}
            # A model trained with grade dropout is probed with grade guidance too.
            for name in [style] + ([style + stages.GUIDED] if var.finetune.grade_drop else []):
                rows.append({**common, "model": name, **trained,
                             **probe_finetuned(var, name, real, clf, progress)})
    path = cfg.run_dir / SWEEP_FILE
    earlier = json.loads(path.read_text()) if path.is_file() else []
    atomic.write_text(path, json.dumps(earlier + rows, indent=1))
    return rows


def read_rows(cfg: Profile) -> list[dict]:
    """Every row the profile's sweeps have written (empty when none ran)."""
    path = cfg.run_dir / SWEEP_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def published_path(cfg: Profile) -> Path:
    """Where the repository keeps the sweep rows behind the profile's settings:
    book/results/sweep_<profile>.json (a copy of a run's sweep.json, each row with its
    command), which chapter 08 shows; a book build does not rerun them."""
    return cfg.root / "book" / "results" / f"sweep_{cfg.name}.json"


def published_rows(cfg: Profile) -> list[dict]:
    path = published_path(cfg)
    return json.loads(path.read_text()) if path.is_file() else []


# The columns of `table`: (row key, header, format); a row lacking a key shows "-".
COLUMNS = (("variant", "Variant", "{}"), ("model", "Model", "{}"), ("steps", "Steps", "{:,}"),
           ("minutes", "Training minutes", "{:.1f}"), ("final_loss", "Final loss", "{:.3f}"),
           ("base_R@3", "R@3", "{:.3f}"), ("base_FID", "FID", "{:.2f}"),
           ("movement_accuracy", "Movement (15)", "{:.2f}"),
           ("test_accuracy", "FMS test (7)", "{:.2f}"), ("wrong_side", "Wrong side", "{:.2f}"),
           ("grade_accuracy", "Grade (3)", "{:.2f}"), ("grade_lstm", "Grade, LSTM", "{:.2f}"),
           ("squat_pelvis_g1", "Squat pelvis g1 (m)", "{:.2f}"),
           ("squat_pelvis_g2", "g2", "{:.2f}"), ("squat_pelvis_g3", "g3", "{:.2f}"))


def table(rows: list[dict]) -> str:
    """Sweep rows as a markdown table (one row per trained model, the columns of COLUMNS)."""
    def cell(row, key, fmt):
        value = row.get(key)
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "-"
        return fmt.format(value)
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)
