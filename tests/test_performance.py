"""Tests for fmsnb.publish.performance: the benchmark table, chapter wall times, FLOP counts and
the cost estimate."""
import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from fmsnb.config import Profile
from fmsnb.mdm import MDM, MDMConfig
from fmsnb.publish import performance
from fmsnb.train import TrainConfig

SMALL = MDMConfig(latent_dim=32, layers=2, heads=2, ff_size=64, text_dim=16)


def _bench(seconds_cached: float = 0.5, model: MDMConfig = SMALL) -> dict:
    """A benchmark result with the keys `fmsnb.publish.bench.run_bench` writes."""
    return {
        "training_speedup": 3.0, "sampling_speedup": 40.0, "training_speedup_same_encoder": 1.5,
        "training": {"batch_size": 4, "frames": 60, "steps_timed": 2,
                     "seconds_per_step": {"cached": {"min": seconds_cached},
                                          "reencoded": {"min": 3 * seconds_cached}},
                     "samples_per_second": {"cached": 4 / seconds_cached,
                                            "reencoded": 4 / (3 * seconds_cached),
                                            "reencoded_same_encoder": 4 / (1.5 * seconds_cached)}},
        "sampling": {"n_motions": 2, "frames": 40, "guidance": 2.5,
                     "mdm": {"sampler": "ancestral (ddpm)", "steps": 1000, "steps_timed": 5,
                             "seconds_per_motion": {"min": 8.0}},
                     "ours": {"sampler": "ddim", "steps": 5,
                              "seconds_per_motion": {"min": 0.2}}},
        "model": asdict(model), "parameters": MDM(model).param_count(), "encoder": "minilm-x",
        "device": "cpu", "cpu": "x86_64", "torch_threads": 2,
        "load_average_1min": {"before": 1.0, "after": 1.5},
    }


def test_bench_rows_show_both_ways_the_speedups_and_the_setting():
    rows = performance.bench_rows(_bench())
    training, same_encoder, sampling, model, machine = rows
    assert same_encoder["speedup"] == "1.50x" and "minilm-x" in same_encoder["measure"]
    assert training["MDM's way"].startswith("2.7 ") and training["ours"].startswith("8.0 ")
    assert training["speedup"] == "3.00x" and sampling["speedup"] == "40.0x"
    assert "5 steps timed and extrapolated" in sampling["MDM's way"]
    assert sampling["ours"].startswith("0.200 (5-step ddim")
    assert f"{MDM(SMALL).param_count():,} parameters" in model["ours"]
    assert "2 torch threads" in machine["ours"]
    assert all(set(r) == {"measure", "MDM's way", "ours", "speedup"} for r in rows)


def _executed(path: Path, profile: str | None, cell_seconds: list[float],
              exception: bool = False) -> None:
    meta = {"parameters": {"profile": profile}, "end_time": "2025-01-01T10:00:00.5",
            "duration": None if profile is None else sum(cell_seconds) + 1.0,
            "exception": exception}
    cells = [{"cell_type": "code", "metadata": {"papermill": {"duration": s}}, "source": ""}
             for s in cell_seconds]
    path.write_text(json.dumps({"metadata": {"papermill": meta}, "cells": cells}))


def test_chapter_times_read_papermill_metadata_in_the_given_order(tmp_path):
    _executed(tmp_path / "01_a.ipynb", "smoke", [0.5, 3.0, 1.0])
    _executed(tmp_path / "02_b.ipynb", "default", [2.0])
    _executed(tmp_path / "03_c.ipynb", None, [1.0])                 # never finished
    _executed(tmp_path / "04_d.ipynb", "smoke", [1.0], exception=True)
    times = performance.chapter_times(tmp_path, ["02_b", "01_a", "03_c", "04_d", "05_absent"])
    assert [t.name for t in times] == ["02_b", "01_a"]
    b, a = times
    assert (a.profile, a.seconds, a.slowest_cell, a.slowest_seconds) == ("smoke", 5.5, 1, 3.0)
    assert (b.profile, b.seconds) == ("default", 3.0)
    assert a.finished.startswith("2025-01-01T10:00:00")


def test_flop_counts_follow_the_model_and_the_batch():
    step = performance.training_step_flops(SMALL, batch=4, frames=60)
    assert performance.training_step_flops(SMALL, batch=8, frames=60) == pytest.approx(2 * step)
    # Matrix products dominate: about 6 FLOPs per parameter and token for forward + backward.
    tokens = 4 * 61                                            # frames + the condition token
    assert 0.7 < step / (6 * MDM(SMALL).param_count() * tokens) < 1.6
    # One guided denoising step: two forward passes of one motion, a third of a training step's
    # FLOPs per motion.
    sample = performance.sampling_step_flops(SMALL, frames=60)
    assert sample == pytest.approx(2 * step / 4 / 3, rel=0.15)


def _profile(**changes) -> Profile:
    profile = Profile(name="t", model=SMALL,
                      pretrain=TrainConfig(steps=1000, batch_size=4),
                      finetune=TrainConfig(steps=100, batch_size=2),
                      styles=["numerical", "textual"])
    profile.evaluation = replace(profile.evaluation, replications=3, samples=10, mm_captions=2,
                                 mm_repeats=3)
    profile.generation = replace(profile.generation, per_cell=2)
    return replace(profile, **changes)


def test_sampled_motions_count_the_evaluation_and_the_generated_sets():
    motions = performance.sampled_motions(_profile())
    assert motions == {"t2m_per_model": 3 * 10 + 3 * 2 * 3, "fms_per_model": 15 * 3 * 2,
                       "models": 3, "total": 3 * (48 + 90)}


def test_cost_estimate_divides_counted_work_by_measured_and_assumed_rates():
    cfg = _profile()
    gpu = performance.GPUAssumption("a GPU", peak_tflops=10.0, utilisation=0.5)
    estimate = performance.estimate_cost(cfg, _bench(0.5), gpu)
    step = performance.training_step_flops(SMALL, 4)
    assert estimate["steps"] == {"pretrain": 1000, "finetune": 200}
    assert estimate["step_flops"]["pretrain"] == pytest.approx(step)
    assert estimate["train_samples"] == 1000 * 4 + 200 * 2
    assert estimate["denoising_steps"] == cfg.sampling.steps            # the DDIM default
    bench_flops = performance.training_step_flops(SMALL, 4, 60)
    assert estimate["cpu_flops_per_second"] == pytest.approx(bench_flops / 0.5)
    total = estimate["train_flops"] + estimate["sample_flops"]
    assert estimate["cpu_seconds"]["total"] == pytest.approx(total / (bench_flops / 0.5))
    assert estimate["gpu_seconds"]["total"] == pytest.approx(total / 5e12)
    # A machine twice as slow takes twice as long; the GPU estimate does not move.
    slower = performance.estimate_cost(cfg, _bench(1.0), gpu)
    assert slower["cpu_seconds"]["total"] == pytest.approx(2 * estimate["cpu_seconds"]["total"])
    assert slower["gpu_seconds"] == estimate["gpu_seconds"]
    # MDM's ancestral sampler runs every diffusion step.
    ddpm = performance.estimate_cost(
        _profile(sampling=replace(cfg.sampling, sampler="ddpm")), _bench(), gpu)
    assert ddpm["denoising_steps"] == cfg.diffusion.steps
    assert ddpm["sample_flops"] == pytest.approx(
        estimate["sample_flops"] * cfg.diffusion.steps / cfg.sampling.steps)


def test_cost_rows_say_the_gpu_rate_is_assumed():
    estimate = performance.estimate_cost(_profile(), _bench())
    rows = {r["quantity"]: r for r in performance.cost_rows(estimate)}
    gpu = rows[f"time on one {performance.GPU.name}"]
    assert gpu["how"].startswith("ASSUMED 30%")
    assert rows["training steps"]["value"] == "1,000 + 200"
    assert rows["this machine's rate"]["how"].startswith("measured")


@pytest.mark.parametrize("seconds, text", [(90, "90 s"), (3 * 3600, "3.0 hours"),
                                           (5 * 86400, "5.0 days"), (3 * 365 * 86400, "3.0 years")])
def test_readable_duration_picks_a_unit(seconds, text):
    assert performance.readable_duration(seconds) == text


def test_markdown_table_keeps_key_order_and_escapes_pipes():
    table = performance.markdown_table([{"a": 1, "b": "x|y"}, {"a": 2, "b": "z"}])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |", "| 2 | z |"]
    assert performance.markdown_table(performance.bench_rows(_bench())).count("\n") == 6
    with pytest.raises(ValueError, match="keys"):
        performance.markdown_table([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="no rows"):
        performance.markdown_table([])


def test_chapter_rows(tmp_path):
    _executed(tmp_path / "01_a.ipynb", "smoke", [0.5, 3.0])
    (row,) = performance.chapter_rows(performance.chapter_times(tmp_path, ["01_a"]))
    assert row == {"chapter": "01_a", "wall time": "4.5 s", "slowest cell": "cell 1, 3.0 s",
                   "finished": "2025-01-01 10:00:00"}


def test_chapter_times_name_a_file_that_is_not_a_notebook(tmp_path):
    (tmp_path / "01_a.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match=r"01_a\.ipynb: not a notebook"):
        performance.chapter_times(tmp_path, ["01_a"])


def test_headline_numbers_of_two_runs_side_by_side():
    def run(r3, lstm, movement):
        return {"t2m": {"rows": {"Base MDM": {"R@3": [r3, 0.01], "FID": [2.5, 0.1]}}},
                "classification": {"within": {"real": {"accuracy": lstm}},
                                   "real_trained": {n: {"accuracy": 0.5} for n in
                                                    ("real", "base", "token", "token+gg")},
                                   "movement": {n: {"accuracy": movement} for n in
                                                ("real", "base", "token", "token+gg")}},
                "finetuning": {"squat_lowest_pelvis_m": {
                    "real clips": {"1": 0.8, "2": 0.6, "3": 0.5},
                    "token": {"1": 0.81, "2": None, "3": 0.52}}}}
    ours = performance.headline(run(0.63, 0.72, 0.6))
    assert ours["base model, Table 1 R@3"] == "0.630"
    assert ours["token+gg: requested movement named"] == "0.60"
    assert ours["token: deep squat, lowest pelvis g1/g2/g3 (m)"] == "0.81 / - / 0.52"
    assert not any(k.startswith("base:") or k.startswith("real clips") for k in ours)
    del ours["base model, Table 1 FID"]
    table = performance.headline_table({"default": ours, "long": performance.headline(
        run(0.73, 0.9, 0.8))}).splitlines()
    assert table[0] == "| measure | default | long |"
    assert "| base model, Table 1 FID | - | 2.50 |" in table
