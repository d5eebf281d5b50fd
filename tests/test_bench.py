"""The benchmark runs end to end on a tiny model and writes its JSON (speedups not asserted:
they are measurements, and a tiny model on a busy test machine says nothing about them)."""
import json

import torch

from fmsnb.mdm import MDMConfig
from fmsnb.publish.bench import BenchConfig, run_bench
from test_train import FakeEncoder

torch.set_num_threads(1)


def test_bench_runs_and_writes_the_json(tmp_path):
    cfg = BenchConfig(model=MDMConfig(latent_dim=16, layers=1, heads=2, ff_size=32, max_len=48),
                      batch_size=4, train_frames=48, train_steps=2, n_motions=3,
                      sample_frames=20, mdm_steps=40, mdm_steps_timed=4, ddim_steps=5)
    encoder, mdm_encoder = FakeEncoder(), FakeEncoder()
    result = run_bench(cfg, tmp_path / "bench" / "bench.json", encoder=encoder,
                       mdm_encoder=mdm_encoder, progress=False)
    saved = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ("sampling_speedup", "training_speedup", "training_speedup_same_encoder",
                "training", "sampling", "model", "parameters", "batch_size", "device",
                "torch_threads", "date", "mdm_encoder"):
        assert key in saved
    assert saved["model"]["text_dim"] == encoder.dim and saved["parameters"] > 0
    assert saved["training_speedup"] > 0 and saved["sampling_speedup"] > 0
    mdm, ours = saved["sampling"]["mdm"], saved["sampling"]["ours"]
    assert mdm["steps_timed"] == 4 == len(mdm["seconds_per_step"]["all"])
    assert "extrapolates" in mdm["note"]
    # Extrapolated: one step's time times the 40 steps, shared by the 3 motions.
    assert abs(mdm["seconds_per_motion"]["min"] - mdm["seconds_per_step"]["min"] * 40 / 3) < 1e-9
    assert len(ours["seconds_per_run"]["all"]) == cfg.repeats
    assert abs(saved["sampling_speedup"] - mdm["seconds_per_motion"]["min"]
               / ours["seconds_per_motion"]["min"]) < 1e-9
    steps = saved["training"]["seconds_per_step"]
    assert set(steps) == {"cached", "cached_one_thread", "reencoded", "reencoded_same_encoder"}
    assert len(steps["cached"]["all"]) == len(steps["cached_one_thread"]["all"]) == 2
    assert torch.get_num_threads() == saved["torch_threads"]    # restored after the 1-thread steps
    # Our encoder: precomputed once for training, re-encoded in each of the 2 + 1 warm-up
    # steps of the same-encoder variant, and once per cached sampling call (warm-up, 3 runs).
    assert encoder.calls == 1 + 3 + 1 + 3
    # MDM's encoder: every step of the re-encoding variant, and twice per MDM sampling step.
    assert mdm_encoder.calls == 3 + 2 * 4


def test_load_or_run_reuses_a_matching_measurement_only(tmp_path, monkeypatch):
    from fmsnb.publish import bench
    cfg = BenchConfig(model=MDMConfig(latent_dim=16, layers=1, heads=2, ff_size=32, max_len=48),
                      batch_size=2, train_frames=48, train_steps=1, n_motions=2,
                      sample_frames=20, mdm_steps=10, mdm_steps_timed=2, ddim_steps=2, repeats=1)
    path = tmp_path / "bench.json"
    first = bench.load_or_run(cfg, path, encoder=FakeEncoder(), progress=False)
    monkeypatch.setattr(bench, "random_clip_encoder", FakeEncoder)
    runs = []
    real_run = bench.run_bench
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: runs.append(1) or real_run(*a, **k))
    assert bench.load_or_run(cfg, path, encoder=FakeEncoder(), progress=False) == first
    assert runs == []                                       # same settings: read back
    other = BenchConfig(**{**cfg.__dict__, "repeats": 2})
    bench.load_or_run(other, path, encoder=FakeEncoder(), progress=False)
    assert runs == [1]                                      # other settings: measured again
    older = json.loads(path.read_text())
    del older["format"]                                     # as measured by an older version
    path.write_text(json.dumps(older))
    bench.load_or_run(other, path, encoder=FakeEncoder(), progress=False)
    assert runs == [1, 1] and "cached_one_thread" in json.loads(path.read_text())["training"][
        "seconds_per_step"]
