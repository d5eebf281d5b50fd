"""Tests of the sweep's settings: `--set section.key=value` checked like a profile file."""
import pytest

from fmsnb.config import load_profile
from fmsnb.sweep import with_settings


def test_settings_are_read_and_checked_like_a_profile(tiny_repo):
    cfg = load_profile("tiny", root=tiny_repo)
    out = with_settings(cfg, ["finetune.lr=1e-3", "model.patch=2", "fms.views=[front, side]",
                              "finetune.ema_decay=0.9"])
    assert (out.finetune.lr, out.model.patch, out.fms.views, out.finetune.ema_decay) == (
        0.001, 2, ["front", "side"], 0.9)
    assert cfg.finetune.lr != 0.001                         # the profile itself is unchanged
    for bad, says in [("finetune.lr=abc", "lr: got 'abc'"), ("model.patch=2.5", "expected int"),
                      ("finetune.nope=1", "unknown key"), ("nosuch.x=1", "no section"),
                      ("finetune.decay=linear", "decay must be"), ("finetune.lr", "section.key=")]:
        with pytest.raises(ValueError, match=says):
            with_settings(cfg, [bad])
