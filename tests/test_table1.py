import numpy as np
import pytest
import torch

from conftest import REPO
from fmsnb import paper, t2m_protocol, table1
from fmsnb.config import load_profile
from fmsnb.dataset import Caption, MotionItem
from test_t2m_protocol import coded_items

TINY = """name: evaltiny
standin: {clips_per_action: 1}
evaluator: {text_hidden: 8, movement_hidden: 8, motion_hidden: 8, embed_dim: 8, epochs: 1}
"""


def profile(root, text=TINY, data_root=None):
    (root / "params").mkdir(exist_ok=True)
    (root / "params" / "evaltiny.yml").write_text(text)
    return load_profile("evaltiny", data_root, root=root)


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.delenv("FMSNB_RUNS", raising=False)     # keep the run inside tmp_path
    torch.set_num_threads(1)
    return profile(tmp_path)


def test_self_trained_evaluator_is_cached_and_retrained_when_its_settings_change(cfg, monkeypatch):
    ev = table1.get_evaluator(cfg, progress=False)
    path = cfg.run_dir / "evaluator" / table1.EVALUATOR_FILE
    assert path.is_file() and "trained on this run's corpus" in ev.source
    feats = [np.random.default_rng(0).normal(size=(40, 263)).astype(np.float32)]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached evaluator should have been reused")
    monkeypatch.setattr(table1, "train_evaluator", no_training)
    again = table1.get_evaluator(cfg, progress=False)
    np.testing.assert_allclose(again.embed_motions(feats), ev.embed_motions(feats), atol=1e-6)
    assert again.embed_texts([["a/DET", "person/NOUN"]]).shape == (1, 8)

    cfg.evaluator.epochs = 2                         # another setting: the cache is stale
    with pytest.raises(AssertionError, match="reused"):
        table1.get_evaluator(cfg, progress=False)


def test_published_evaluator_is_chosen_only_with_a_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("FMSNB_RUNS", raising=False)
    named = TINY + "evaluator_files: {checkpoint: t2m/finest.tar, glove: glove}\n"
    assert not table1.uses_published_evaluator(profile(tmp_path, named))
    cfg = profile(tmp_path, named, data_root=tmp_path / "data")
    assert table1.uses_published_evaluator(cfg)
    with pytest.raises(ValueError, match="evaluator_files.mean"):
        table1.get_evaluator(cfg, progress=False)

    full = named.replace("glove: glove}", "glove: glove, mean: m.npy, std: /abs/s.npy}")
    cfg = profile(tmp_path, full, data_root=tmp_path / "data")
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "m.npy", np.zeros(263))
    with pytest.raises(FileNotFoundError, match="/abs/s.npy"):
        table1.get_evaluator(cfg, progress=False)
    seen = {}
    monkeypatch.setattr(table1, "published_normalisation", lambda cfg: (np.zeros(263), np.ones(263)))
    monkeypatch.setattr(table1, "load_published", lambda *args: seen.setdefault("args", args))
    table1.get_evaluator(cfg, progress=False)
    checkpoint, glove = seen["args"][:2]              # relative paths resolve under data_root
    assert checkpoint == tmp_path / "data" / "t2m" / "finest.tar"
    assert glove == tmp_path / "data" / "glove"


def test_full_profile_reads_the_evaluators_own_normalisation_and_refuses_another(
        tmp_path, shared_data):
    # issue 12, defect (d): full.yml named t2m/meta/{mean,std}.npy, which the release lacks
    data = tmp_path / "data"
    hml = data / "HumanML3D"
    for folder in ("new_joint_vecs", "new_joints", "texts"):
        (hml / folder).mkdir(parents=True)
    for split in ("train.txt", "test.txt"):
        (hml / split).write_text("")
    real = shared_data / "humanml3d"
    for name in ("Mean.npy", "Std.npy"):
        (hml / name).write_bytes((real / name).read_bytes())
    meta = data / "t2m" / "Comp_v6_KLD01" / "meta"
    meta.mkdir(parents=True)
    for ours, theirs in (("mean.npy", "t2m_eval_mean.npy"), ("std.npy", "t2m_eval_std.npy")):
        (meta / ours).write_bytes((real / theirs).read_bytes())
    cfg = load_profile("full", data, root=REPO)
    mean, std = table1.published_normalisation(cfg)
    np.testing.assert_array_equal(std, np.load(real / "t2m_eval_std.npy"))
    np.testing.assert_array_equal(mean, np.load(real / "t2m_eval_mean.npy"))

    (meta / "std.npy").write_bytes((real / "Std.npy").read_bytes())     # the dataset's own
    with pytest.raises(ValueError, match=r"evaluator_files.std: .*meta/std.npy: not the "
                                         r"evaluator's std \(it looks like the dataset's own"):
        table1.published_normalisation(cfg)
    (meta / "std.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match="evaluator_files.std: .* not a readable .npy file"):
        table1.published_normalisation(cfg)
    (meta / "mean.npy").unlink()
    with pytest.raises(FileNotFoundError, match="evaluator_files.mean"):
        table1.published_normalisation(cfg)


def test_caption_pairs_one_per_caption():
    motion = np.zeros((40, 263), np.float32)
    items = [MotionItem("a", motion, [Caption("x", ["x/NOUN"]), Caption("y", ["y/NOUN"])]),
             MotionItem("b", motion, [Caption("z", ["z/NOUN"])])]
    feats, tokens = table1.caption_pairs(items)
    assert len(feats) == 3 and tokens == [["x/NOUN"], ["y/NOUN"], ["z/NOUN"]]


def test_generators_need_every_model_fully_trained(cfg):
    with pytest.raises(FileNotFoundError, match="pretrain"):
        table1.generators(cfg)
    cfg.pretrain.steps, cfg.finetune.steps = 4, 2
    for name in ("base", *cfg.styles):                   # only the names matter to this check
        (cfg.run_dir / "models" / name).mkdir(parents=True)
        (cfg.run_dir / "models" / name / "ckpt_000000002.pt").touch()
    with pytest.raises(ValueError, match="'base' has trained 2 of the profile's 4 steps"):
        table1.generators(cfg)
    (cfg.run_dir / "models" / "base" / "ckpt_000000004.pt").touch()
    assert table1.trained_steps(cfg) == {"base": 4, **{s: 2 for s in cfg.styles}}


def test_t2m_frame_places_the_papers_rows_beside_ours():
    ev, items = coded_items(64)
    exact = lambda captions, lengths, seed: [items[int(c[1:])].motion[:n]
                                             for c, n in zip(captions, lengths)]
    cfg = t2m_protocol.EvalConfig(replications=2, samples=64, diversity_pairs=20,
                                  mm_captions=2, mm_repeats=3, mm_pairs=2, allow_smaller=True)
    table = t2m_protocol.t2m_table(ev, items, {"Base MDM": exact}, cfg, progress=False)
    frame = table1.t2m_frame(table)
    assert list(frame.columns) == list(t2m_protocol.METRICS)
    assert list(frame.index) == [(table1.OURS, "Ground truth"), (table1.OURS, "Base MDM"),
                                 *[(table1.PAPERS, name) for name in paper.TABLE1]]
    ours = frame.loc[(table1.OURS, "Base MDM")]
    mean, ci = table["rows"]["Base MDM"]["R@3"]
    assert ours["R@3"] == f"{mean:.3f} ± {ci:.3f}"
    assert frame.loc[(table1.OURS, "Ground truth"), "MModality"] == "—"
    assert frame.loc[(table1.PAPERS, "Base MDM"), "FID"] == "0.544"     # theirs: means only
    assert frame.loc[(table1.PAPERS, "Base MDM"), "R@1"] == "—"
    table["rows"]["Ground truth"]["FID"] = (-1e-9, 0.0)                 # numerical noise
    assert table1.t2m_frame(table).loc[(table1.OURS, "Ground truth"), "FID"] == "0.000 ± 0.000"


def test_first_call_keeps_the_first_answers_only():
    recorder = table1.FirstCall(lambda captions, lengths, seed: [np.full((n, 263), seed)
                                                                 for n in lengths])
    first = recorder(["a"], [40], 1)
    recorder(["b", "c"], [44, 48], 2)
    assert recorder.motions is first and len(recorder.motions) == 1
