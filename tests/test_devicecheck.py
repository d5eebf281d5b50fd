"""The device check (issue 12, section 5) runs on the CPU with the tiny profile and one timed
step: its JSON holds every measurement, and its schedule is the arithmetic its docstring says
(the timings themselves are measurements, never asserted)."""
import json

import pytest

from fmsnb.cli import main
from fmsnb.config import load_profile
from fmsnb.publish.performance import sampled_motions


@pytest.fixture
def run(tiny_repo, monkeypatch):
    monkeypatch.setenv("FMSNB_ROOT", str(tiny_repo))
    return lambda *argv: main(["device-check", *argv, "--profile", "tiny", "--quiet"])


def test_device_check_times_training_and_both_samplers_and_extrapolates(run, tiny_repo,
                                                                        capsys):
    out = tiny_repo / "check" / "device.json"
    assert run("--device", "cpu", "--steps", "1", "--batch", "2", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "training, batch 4:" in printed and "steps/s" in printed and str(out) in printed
    result = json.loads(out.read_text())
    cfg = load_profile("tiny", root=tiny_repo)
    assert result["device"] == "cpu" and result["profile"] == "tiny"
    # The profile's batch (4 for both stages), MDM's 64 and the one asked for.
    training = {t["batch_size"]: t for t in result["training"]}
    assert sorted(training) == [2, 4, 64]
    for t in training.values():
        assert len(t["seconds_per_step"]["all"]) == 1 == t["steps_timed"]
        assert t["steps_per_second"] == pytest.approx(1 / t["seconds_per_step"]["median"])
    sampling = {s["sampler"]: s for s in result["sampling"]}
    assert sampling["ddpm"]["denoising_steps"] == cfg.diffusion.steps
    assert sampling["ddim"]["denoising_steps"] == cfg.sampling.steps
    for s in sampling.values():
        assert s["motions"] == cfg.sampling.batch_size
        assert s["seconds_per_motion"] == pytest.approx(
            s["seconds_per_step"]["median"] * s["denoising_steps"] / s["motions"])
    e = result["schedule_seconds"]
    step = training[4]["seconds_per_step"]["median"]
    assert e["pretrain"] == pytest.approx(cfg.pretrain.steps * step)
    assert e["finetune"] == pytest.approx(len(cfg.styles) * cfg.finetune.steps * step)
    assert e["sampled_motions"] == sampled_motions(cfg)["total"]
    assert e["sampling"] == pytest.approx(
        e["sampled_motions"] * sampling[cfg.sampling.sampler]["seconds_per_motion"])
    assert e["total"] == pytest.approx(e["pretrain"] + e["finetune"] + e["sampling"])


@pytest.mark.parametrize("argv, message", [
    (("--device", "gpu7"), "'gpu7': not a device name"),
    (("--steps", "0"), "must be a whole number, at least 1"),
])
def test_bad_device_check_arguments_exit_2_saying_why(run, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        run(*argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
