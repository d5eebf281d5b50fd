import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from fmsnb import stages
from fmsnb.captions import STYLES
from fmsnb.config import load_profile

@pytest.fixture(scope="module")
def cfg(tiny_repo):
    return load_profile("tiny", root=tiny_repo)


def test_finetuning_needs_the_base_model_first(cfg):
    with pytest.raises(FileNotFoundError, match="pretrain"):
        stages.finetune(cfg, "token", progress=False)


def test_an_unknown_style_is_refused_before_any_work(cfg):
    for call in (stages.finetune, stages.load_generator):
        with pytest.raises(ValueError, match="unknown conditioning style"):
            call(cfg, "fitness")


def test_stages_train_resume_and_sample(cfg):
    log = stages.pretrain(cfg, progress=False)
    assert log[-1]["step"] == 4
    assert stages.pretrain(cfg, progress=False)[-1]["step"] == 4     # finished: nothing redone
    for style in cfg.styles:
        assert stages.finetune(cfg, style, progress=False)[-1]["step"] == 2
    with pytest.raises(ValueError, match="base model"):
        stages.finetune(cfg, "none", progress=False)

    textual = stages.load_generator(cfg, "textual")
    assert textual.caption("m01", 1).startswith("an injured person")
    token = stages.load_generator(cfg, "token")
    assert token.caption("m01", 3) == stages.movement_captions("m01")[0]
    out = token.generate_fms(["m01", "m01"], [1, 3], [40, 40])
    assert [f.shape for f in out] == [(40, 263), (40, 263)]
    assert not np.allclose(out[0], out[1])         # the grade token changes the motion

    data = stages.generated_fms_set(cfg, "token", progress=False)
    assert len(data["features"]) == 15 * 3 and sorted(set(data["grades"])) == [1, 2, 3]
    again = stages.generated_fms_set(cfg, "token", progress=False)   # read back, not redone
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(data["features"], again["features"]))

    # "token+gg": the same model, its grade guided on its own; at the caption's scale it is the
    # ordinary guidance again.
    guided = stages.load_generator(cfg, "token" + stages.GUIDED)
    assert guided.grade_scale == cfg.sampling.grade_guidance and token.grade_scale is None
    guided.grade_scale = cfg.sampling.guidance
    same = guided.generate_fms(["m01", "m01"], [1, 3], [40, 40])
    assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(out, same))
    with pytest.raises(ValueError, match="no grade"):
        stages.load_generator(cfg, "base" + stages.GUIDED)


def test_lengths_per_movement_are_multiples_of_four(cfg):
    lengths = stages.fms_lengths(cfg)
    assert len(lengths) == 15 and all(n % 4 == 0 and 0 < n <= 196 for n in lengths.values())


def test_new_models_do_not_depend_on_random_numbers_drawn_before(cfg):
    first = stages.new_model(cfg, 16, STYLES["token"])
    torch.rand(1000)                                   # e.g. a text encoder loading on the way
    second = stages.new_model(cfg, 16, STYLES["token"])
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 second.state_dict().values()))


def test_styles_fine_tuned_side_by_side_equal_one_after_another(tiny_repo, tmp_path, monkeypatch):
    """`style_processes` 2: each style in its own one-thread process gives the loss log and the
    weights of the same fine-tune run here with one thread; a failing style stops the call."""
    cfg = load_profile("tiny", root=tiny_repo)
    stages.pretrain(cfg, progress=False)
    side = replace(cfg, style_processes=2)
    side.run_path = tmp_path / "side"
    shutil.copytree(stages.model_dir(cfg, stages.BASE), stages.model_dir(side, stages.BASE))
    shutil.copytree(cfg.run_dir / "data", side.run_dir / "data", symlinks=True)
    logs = stages.finetune_styles(side, cfg.styles, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = {style: stages.finetune(cfg, style, progress=False) for style in cfg.styles}
    finally:
        torch.set_num_threads(threads)
    for style in cfg.styles:
        assert [r["loss"] for r in logs[style]] == pytest.approx(
            [r["loss"] for r in alone[style]], rel=1e-6)
        ours, theirs = (torch.load(stages.trained_checkpoint(c, style), weights_only=False)
                        for c in (side, cfg))
        assert all(torch.allclose(ours["model"][k], theirs["model"][k], atol=1e-6)
                   for k in theirs["model"])
    again = stages.finetune_styles(side, cfg.styles, progress=False)      # done: read back
    assert [r["step"] for r in again["token"]] == [r["step"] for r in logs["token"]]
    with pytest.raises(ValueError, match="base model"):
        stages.finetune_styles(side, ["textual", "none"], progress=False)
