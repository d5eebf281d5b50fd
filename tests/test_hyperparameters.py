"""Tests of fmsnb.publish.hyperparameters: a run's training settings beside the paper's."""
from dataclasses import replace

import pytest

from fmsnb.config import load_profile
from fmsnb.publish.hyperparameters import ROWS, SEEN, beside_paper


def test_pretraining_stands_beside_hp1_and_hp2_setting_by_setting():
    cfg = load_profile("default")
    cfg = replace(cfg, pretrain=replace(cfg.pretrain, steps=1000, batch_size=32, lr=2e-4,
                                        ema_decay=None))
    table = beside_paper(cfg, "pretrain")
    assert list(table.columns) == ["this run (default, pretrain)", "paper HP1", "paper HP2"]
    assert list(table.index) == [*ROWS, SEEN]
    ours, hp2 = table["this run (default, pretrain)"], table["paper HP2"]
    assert (ours["lr"], ours["steps"], ours["ema_decay"], ours[SEEN]) == (
        "0.0002", "1,000", "none", "32,000")
    assert (hp2["lr"], hp2["weight_decay"], hp2[SEEN]) == ("3e-05", "3e-06", "19,200,000")
    assert hp2["checkpoint_every"] == "50,000"        # the paper's, TrainConfig's default


def test_finetuning_stands_beside_the_papers_finetuning_alone():
    table = beside_paper(load_profile("default"), "finetune")
    assert list(table.columns) == ["this run (default, finetune)", "paper FINETUNE"]
    assert table["paper FINETUNE"]["steps"] == "600,000"


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown training stage 'sample'"):
        beside_paper(load_profile("default"), "sample")
