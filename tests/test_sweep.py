"""Tests of the sweep's settings (`--set section.key=value` checked like a profile file) and of
what a variant shares with its profile's run."""
import pytest

from fmsnb.config import load_profile
from fmsnb.stages import BASE
from fmsnb.sweep import SHARED, variant, with_settings


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


def test_a_variant_makes_what_its_settings_change_and_links_the_rest(tiny_repo):
    cfg = load_profile("tiny", root=tiny_repo)
    var = variant(cfg, "more_subjects", ["fms_standin.subjects=5"], own_base=False)
    links = {rel: (var.run_dir / rel).is_symlink() for rel in SHARED}
    assert links == {"data/humanml3d_standin": True, "data/fms_raw": False,
                     "data/fms_hml": False, "cache": True, "evaluator": True,
                     f"models/{BASE}": True, "models/numerical": False,
                     "models/textual": False, "models/token": False}
    assert (var.run_dir / "data/humanml3d_standin").resolve() == (
        cfg.run_dir / "data/humanml3d_standin").resolve()
    # the variant's FMS corpus is made in its own folder, never through the profile's
    assert var.run_dir / "data" != cfg.run_dir / "data" and not (var.run_dir / "data").is_symlink()
    # sampled differently, the profile's fine-tuned models themselves are probed
    scaled = variant(cfg, "scale3", ["sampling.grade_guidance=3"], own_base=False)
    assert all((scaled.run_dir / rel).is_symlink() for rel in SHARED)
    assert (scaled.run_dir / "models/token").resolve() == (cfg.run_dir / "models/token").resolve()
    own = variant(cfg, "own_base", ["model.layers=3"], own_base=True)
    assert not (own.run_dir / "models").exists()
    for settings in (["standin.clips_per_action=3"], ["model.layers=3"], ["text.side_words=true"]):
        with pytest.raises(ValueError, match="--stage both"):
            variant(cfg, "bad", settings, own_base=False)
