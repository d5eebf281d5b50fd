import numpy as np
import pytest
import torch

from conftest import REPO
from fmsnb import evaluate, paper, physics, quantitative as q
from fmsnb.config import load_profile
from fmsnb.dataset import Caption, MotionItem
from fmsnb.evaluator import Evaluator, EvaluatorConfig, WordVectorizer
from test_evaluate import MeanEvaluator as CodeEvaluator

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


def coded_items(n=64, seed=0):
    rng = np.random.default_rng(seed)
    codes, items = {}, []
    for i in range(n):
        codes[f"w{i}"] = code = rng.normal(size=8) * 3
        motion = np.tile(np.concatenate([code, np.zeros(255)]), (48, 1)).astype(np.float32)
        items.append(MotionItem(f"c{i}", motion, [Caption(f"w{i}", [f"w{i}"])]))
    return CodeEvaluator(codes), items


def test_self_trained_evaluator_is_cached_and_retrained_when_its_settings_change(cfg, monkeypatch):
    ev = q.get_evaluator(cfg, progress=False)
    path = cfg.run_dir / "evaluator" / q.EVALUATOR_FILE
    assert path.is_file() and "trained on this run's corpus" in ev.source
    feats = [np.random.default_rng(0).normal(size=(40, 263)).astype(np.float32)]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached evaluator should have been reused")
    monkeypatch.setattr(q, "train_evaluator", no_training)
    again = q.get_evaluator(cfg, progress=False)
    np.testing.assert_allclose(again.embed_motions(feats), ev.embed_motions(feats), atol=1e-6)
    assert again.embed_texts([["a/DET", "person/NOUN"]]).shape == (1, 8)

    cfg.evaluator.epochs = 2                         # another setting: the cache is stale
    with pytest.raises(AssertionError, match="reused"):
        q.get_evaluator(cfg, progress=False)


def test_saved_evaluator_round_trip_and_bad_file(tmp_path):
    torch.manual_seed(0)
    words = WordVectorizer.from_vocabulary(["walk", "person"], dim=6)
    small = EvaluatorConfig(text_hidden=4, movement_hidden=4, motion_hidden=4, embed_dim=4)
    ev = Evaluator(words, np.zeros(263, np.float32), np.ones(263, np.float32), "here", small)
    q.save_evaluator(ev, tmp_path / "e.pt", "stamp-1")
    loaded, stamp = q.load_evaluator(tmp_path / "e.pt")
    assert stamp == "stamp-1" and loaded.source == "here" and loaded.cfg == small
    feats = [np.random.default_rng(1).normal(size=(44, 263)).astype(np.float32)]
    np.testing.assert_allclose(loaded.embed_motions(feats), ev.embed_motions(feats), atol=1e-6)
    toks = [["a/DET", "person/NOUN", "walk/VERB"]]
    np.testing.assert_allclose(loaded.embed_texts(toks), ev.embed_texts(toks), atol=1e-6)
    assert not list(tmp_path.glob("*.tmp"))          # written atomically, nothing left over

    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        q.load_evaluator(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="none.pt"):
        q.load_evaluator(tmp_path / "none.pt")


def test_published_evaluator_is_chosen_only_with_a_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("FMSNB_RUNS", raising=False)
    named = TINY + "evaluator_files: {checkpoint: t2m/finest.tar, glove: glove}\n"
    assert not q.uses_published_evaluator(profile(tmp_path, named))
    cfg = profile(tmp_path, named, data_root=tmp_path / "data")
    assert q.uses_published_evaluator(cfg)
    with pytest.raises(ValueError, match="evaluator_files.mean"):
        q.get_evaluator(cfg, progress=False)

    full = named.replace("glove: glove}", "glove: glove, mean: m.npy, std: /abs/s.npy}")
    cfg = profile(tmp_path, full, data_root=tmp_path / "data")
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "m.npy", np.zeros(263))
    with pytest.raises(FileNotFoundError, match="/abs/s.npy"):
        q.get_evaluator(cfg, progress=False)
    seen = {}
    monkeypatch.setattr(q, "published_normalisation", lambda cfg: (np.zeros(263), np.ones(263)))
    monkeypatch.setattr(q, "load_published", lambda *args: seen.setdefault("args", args))
    q.get_evaluator(cfg, progress=False)
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
    mean, std = q.published_normalisation(cfg)
    np.testing.assert_array_equal(std, np.load(real / "t2m_eval_std.npy"))
    np.testing.assert_array_equal(mean, np.load(real / "t2m_eval_mean.npy"))

    (meta / "std.npy").write_bytes((real / "Std.npy").read_bytes())     # the dataset's own
    with pytest.raises(ValueError, match=r"evaluator_files.std: .*meta/std.npy: not the "
                                         r"evaluator's std \(it looks like the dataset's own"):
        q.published_normalisation(cfg)
    (meta / "std.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match="evaluator_files.std: .* not a readable .npy file"):
        q.published_normalisation(cfg)
    (meta / "mean.npy").unlink()
    with pytest.raises(FileNotFoundError, match="evaluator_files.mean"):
        q.published_normalisation(cfg)


def test_retrieval_check_against_chance():
    ev, items = coded_items(70)
    check = q.retrieval_check(ev, items, replications=2)
    assert check["pairs"] == 64 and check["replications"] == 2
    assert check["R@1"][0] == pytest.approx(1.0) and check["MM-Dist"][0] < 1e-3
    assert check["chance"]["R@3"] == pytest.approx(3 / 32)
    flat = CodeEvaluator({k: np.zeros(8) for k in ev.codes})       # texts carry no information
    blind = q.retrieval_check(flat, items, replications=2)
    assert blind["R@3"][0] < 0.5


def test_caption_pairs_one_per_caption():
    motion = np.zeros((40, 263), np.float32)
    items = [MotionItem("a", motion, [Caption("x", ["x/NOUN"]), Caption("y", ["y/NOUN"])]),
             MotionItem("b", motion, [Caption("z", ["z/NOUN"])])]
    feats, tokens = q.caption_pairs(items)
    assert len(feats) == 3 and tokens == [["x/NOUN"], ["y/NOUN"], ["z/NOUN"]]


def test_generators_need_every_model_fully_trained(cfg):
    with pytest.raises(FileNotFoundError, match="pretrain"):
        q.generators(cfg)
    cfg.pretrain.steps, cfg.finetune.steps = 4, 2
    for name in ("base", *cfg.styles):                   # only the names matter to this check
        (cfg.run_dir / "models" / name).mkdir(parents=True)
        (cfg.run_dir / "models" / name / "ckpt_000000002.pt").touch()
    with pytest.raises(ValueError, match="'base' has trained 2 of the profile's 4 steps"):
        q.generators(cfg)
    (cfg.run_dir / "models" / "base" / "ckpt_000000004.pt").touch()
    assert q.trained_steps(cfg) == {"base": 4, **{s: 2 for s in cfg.styles}}


def test_t2m_frame_places_the_papers_rows_beside_ours():
    ev, items = coded_items(64)
    exact = lambda captions, lengths, seed: [items[int(c[1:])].motion[:n]
                                             for c, n in zip(captions, lengths)]
    cfg = evaluate.EvalConfig(replications=2, samples=64, diversity_pairs=20, mm_captions=2,
                              mm_repeats=3, mm_pairs=2, allow_smaller=True)
    table = evaluate.t2m_table(ev, items, {"Base MDM": exact}, cfg, progress=False)
    frame = q.t2m_frame(table)
    assert list(frame.columns) == list(q.METRICS)
    assert list(frame.index) == [(q.OURS, "Ground truth"), (q.OURS, "Base MDM"),
                                 *[(q.PAPERS, name) for name in paper.TABLE1]]
    ours = frame.loc[(q.OURS, "Base MDM")]
    mean, ci = table["rows"]["Base MDM"]["R@3"]
    assert ours["R@3"] == f"{mean:.3f} ± {ci:.3f}"
    assert frame.loc[(q.OURS, "Ground truth"), "MModality"] == "—"
    assert frame.loc[(q.PAPERS, "Base MDM"), "FID"] == "0.544"          # theirs: means only
    assert frame.loc[(q.PAPERS, "Base MDM"), "R@1"] == "—"
    table["rows"]["Ground truth"]["FID"] = (-1e-9, 0.0)                 # numerical noise
    assert q.t2m_frame(table).loc[(q.OURS, "Ground truth"), "FID"] == "0.000 ± 0.000"


def test_describe_change_words_follow_the_numbers():
    up = q.describe_change("FID", (0.5, 0.05), (0.9, 0.1), "base", "tuned")
    assert up.startswith("FID rose from 0.500 ± 0.050 (base) to 0.900 ± 0.100 (tuned)")
    assert "worse (lower is better)" in up
    down = q.describe_change("R@3", (0.6, 0.01), (0.5, 0.01), "base", "tuned")
    assert "R@3 fell" in down and "worse (higher is better)" in down
    assert "better" in q.describe_change("MM-Dist", (5.0, 0.1), (4.0, 0.1), "a", "b")
    overlap = q.describe_change("R@3", (0.60, 0.05), (0.62, 0.05), "a", "b")
    assert "rose" in overlap and "cannot tell" in overlap
    gt = (9.5, 0.1)
    closer = q.describe_change("Diversity", (7.0, 0.1), (9.0, 0.1), "a", "b", ground_truth=gt)
    assert "closer to the ground truth" in closer
    farther = q.describe_change("Diversity", (9.0, 0.1), (7.0, 0.1), "a", "b", ground_truth=gt)
    assert "farther from the ground truth" in farther
    paper = q.describe_change("FID", 0.544, 0.949, "their base", "their tuned")
    assert paper == "FID rose from 0.544 (their base) to 0.949 (their tuned)."
    single = q.describe_change("FID", (0.5, 0.0), (0.9, 0.0), "a", "b")
    assert "rose" in single and "no interval" in single and "worse" not in single
    same = q.describe_change("R@3", (0.5, 0.01), (0.5, 0.02), "a", "b")
    assert same.startswith("R@3 was the same, 0.500 ± 0.010 (a) and 0.500 ± 0.020 (b)")
    assert "beyond" in q.describe_change("MModality", (2.0, 0.1), (3.0, 0.1), "a", "b")


def test_split_joints_skips_broken_files(tmp_path):
    (tmp_path / "new_joints").mkdir()
    (tmp_path / "test.txt").write_text("good\nshort\nnan\nmissing\n")
    np.save(tmp_path / "new_joints" / "good.npy", np.zeros((10, 22, 3)))
    np.save(tmp_path / "new_joints" / "short.npy", np.zeros((2, 22, 3)))
    bad = np.zeros((10, 22, 3))
    bad[3] = np.nan
    np.save(tmp_path / "new_joints" / "nan.npy", bad)
    joints, skipped = q.split_joints(tmp_path, "test")
    assert len(joints) == 1 and joints[0].shape == (10, 22, 3)
    reasons = {p.rsplit("/", 1)[1]: r for p, r in skipped}
    assert set(reasons) == {"short.npy", "nan.npy", "missing.npy"}
    assert "NaN" in reasons["nan.npy"] and "unreadable" in reasons["missing.npy"]
    with pytest.raises(FileNotFoundError, match="val.txt"):
        q.split_joints(tmp_path, "val")


def standing(frames=20, height=0.0, drift=0.0):
    """A still body (T, 22, 3) whose lowest joints sit at `height`, drifting `drift` m/frame."""
    j = np.zeros((frames, 22, 3))
    j[:, :, 1] = np.linspace(height, height + 1.7, 22)
    j[:, :, 0] += drift * np.arange(frames)[:, None]
    return j


def test_plausibility_stats_and_frame():
    stats = {"still": q.plausibility_stats([standing(), standing()]),
             "floating": q.plausibility_stats([standing(height=0.3), standing(height=0.5)])}
    assert stats["still"]["motions"] == 2
    assert stats["still"]["floating (m)"] == (0.0, 0.0)
    mean, ci = stats["floating"]["floating (m)"]
    assert mean == pytest.approx(0.4 - physics.CONTACT_HEIGHT) and ci > 0
    frame = q.plausibility_frame(stats)
    assert list(frame.index) == ["still", "floating"]
    assert list(frame.columns) == ["motions", *physics.MEASURES]
    assert frame.loc["floating", "floating (m)"] == f"{mean:.3g} ± {ci:.3g}"
    assert q.significant(0.000123456) == "0.000123" and q.significant(110.488) == "110"
    with pytest.raises(ValueError, match="no motions"):
        q.plausibility_stats([])


def test_first_call_keeps_the_first_answers_only():
    recorder = q.FirstCall(lambda captions, lengths, seed: [np.full((n, 263), seed)
                                                            for n in lengths])
    first = recorder(["a"], [40], 1)
    recorder(["b", "c"], [44, 48], 2)
    assert recorder.motions is first and len(recorder.motions) == 1
