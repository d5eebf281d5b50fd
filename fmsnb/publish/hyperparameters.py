"""A run's training settings beside the paper's: the table of chapters 03 (pretraining) and 04.

The paper gives its settings in its supplementary material ("Training setup"; `fmsnb.paper`):
two for pretraining, `HP1` and `HP2`, and `FINETUNE` for fine-tuning from the HP2 model. A
profile keeps the optimiser and scales the steps down, so the table shows, setting by setting and
in the motions each run sees (steps × batch), how far this run is from the paper's.
"""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from fmsnb import paper
from fmsnb.train import TrainConfig

# The paper's settings for each training section of a profile, by the names the paper gives them.
PAPER = {"pretrain": {"HP1": paper.HP1, "HP2": paper.HP2},
         "finetune": {"FINETUNE": paper.FINETUNE}}
ROWS = ("lr", "batch_size", "weight_decay", "steps", "ema_decay", "checkpoint_every")
SEEN = "motions seen (steps × batch)"


def _show(value) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def beside_paper(cfg, stage: str) -> pd.DataFrame:
    """The profile's `stage` section ("pretrain" or "finetune", a `TrainConfig`) beside the
    paper's settings for that stage: one column per run, one row per setting of ROWS and one
    for SEEN, every value as text. The paper's columns are TrainConfigs too, so that a setting
    the paper does not give shows the default (no EMA, a checkpoint every 50,000 steps)."""
    if stage not in PAPER:
        raise ValueError(f"unknown training stage {stage!r}; choose one of {list(PAPER)}")
    columns = {f"this run ({cfg.name}, {stage})": getattr(cfg, stage),
               **{f"paper {name}": TrainConfig(**settings)
                  for name, settings in PAPER[stage].items()}}
    return pd.DataFrame({name: {**{k: _show(asdict(c)[k]) for k in ROWS},
                                SEEN: _show(c.steps * c.batch_size)}
                         for name, c in columns.items()})
