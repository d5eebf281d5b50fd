import pickle

import numpy as np
import pytest
import torch

from fmsnb import t2m_evaluator as e
from fmsnb.metrics import pairwise_distances, r_precision

ACTIONS = ["walk", "run", "jump", "kick"]


def toy_pairs(rng, n):
    """16 kinds of clip (action x speed x side), each with its own feature pattern and words."""
    feats, tokens = [], []
    for _ in range(n):
        a, fast, side = rng.integers(len(ACTIONS)), rng.integers(2), rng.integers(2)
        T = int(rng.integers(40, 80))
        t = np.linspace(0, 2 * np.pi, T)[:, None]
        f = 0.1 * rng.normal(size=(T, 263))
        f[:, 20 * a:20 * a + 20] += (1 - 2 * side) * np.sin((1 + 2 * fast) * t)
        feats.append(f.astype(np.float32))
        tokens.append(["a/DET", "person/NOUN", f"{ACTIONS[a]}/VERB",
                       ["slowly/ADV", "quickly/ADV"][fast], "to/ADP", "the/DET",
                       ["left/NOUN", "right/NOUN"][side]])
    return feats, tokens


def test_word_vectorizer_follows_the_published_tagging():
    words = e.WordVectorizer.from_vocabulary(["walk", "left", "person"])
    _, pos = words("left/ADJ")
    assert e.POS_TAGS[pos.argmax()] == "Loc_VIP"            # VIP class wins over the tag
    _, pos = words("person/NOUN")
    assert e.POS_TAGS[pos.argmax()] == "NOUN"
    vec, pos = words("zebra/NOUN")                           # unknown word: unk and OTHER
    np.testing.assert_array_equal(vec, words.vectors[words.index["unk"]])
    assert e.POS_TAGS[pos.argmax()] == "OTHER"
    w, p, lengths = words.encode([["walk/VERB"] * 30, ["walk/VERB"]])
    assert lengths.tolist() == [e.MAX_TEXT_LEN + 2, 3]      # truncated to 20, plus sos/eos
    assert w.shape == (2, 22, 300) and p.shape == (2, 22, 15)


def test_published_checkpoint_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(0)
    vocab = ["unk", "sos", "eos", "walk", "a", "person"]
    glove = tmp_path / "glove"
    glove.mkdir()
    np.save(glove / "our_vab_data.npy", np.random.default_rng(0).normal(size=(6, 300)))
    with open(glove / "our_vab_words.pkl", "wb") as f:
        pickle.dump(vocab, f)
    with open(glove / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(vocab)}, f)
    mean, std = np.zeros(263), np.ones(263)
    source = e.Evaluator(e.WordVectorizer.from_glove(glove), mean, std, "test")
    torch.save({k: m.state_dict() for k, m in source.modules().items()}, tmp_path / "finest.tar")

    loaded = e.load_published(tmp_path / "finest.tar", glove, mean, std)
    feats = [np.random.default_rng(1).normal(size=(48, 263)).astype(np.float32)]
    np.testing.assert_allclose(loaded.embed_motions(feats), source.embed_motions(feats), atol=1e-5)
    toks = [["a/DET", "person/NOUN", "walk/VERB"]]
    np.testing.assert_allclose(loaded.embed_texts(toks), source.embed_texts(toks), atol=1e-5)

    state = torch.load(tmp_path / "finest.tar")
    state["motion_encoder"]["input_emb.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.tar")
    with pytest.raises(ValueError, match="does not fit"):
        e.load_published(tmp_path / "bad.tar", glove, mean, std)
    with pytest.raises(FileNotFoundError, match="GloVe"):
        e.load_published(tmp_path / "finest.tar", tmp_path / "nowhere", mean, std)
    with pytest.raises(FileNotFoundError, match="finest.tar"):
        e.load_published(tmp_path / "missing.tar", glove, mean, std)


def test_self_trained_evaluator_ranks_matching_pairs_above_random_on_held_out_data():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    train_f, train_t = toy_pairs(rng, 256)
    test_f, test_t = toy_pairs(rng, 64)
    cfg = e.EvaluatorConfig(text_hidden=64, movement_hidden=64, motion_hidden=64, embed_dim=32,
                            epochs=15, lr=1e-3, margin=3.0)
    ev = e.train_evaluator(train_f, train_t, cfg, progress=False)
    text, motion = ev.embed_texts(test_t), ev.embed_motions(test_f)
    d = pairwise_distances(text, motion)
    matching = np.diag(d).mean()
    random = d[~np.eye(len(d), dtype=bool)].mean()
    assert matching < 0.5 * random
    top, _ = r_precision(text, motion)
    assert top[2] > 0.4                                      # chance is 3/32


def test_normalisation_check_knows_the_released_files(shared_data):
    # issue 12, defect (d): a wrong mean/std would silently corrupt every metric
    real = shared_data / "humanml3d"
    mean, std = np.load(real / "Mean.npy"), np.load(real / "Std.npy")
    ev_mean, ev_std = np.load(real / "t2m_eval_mean.npy"), np.load(real / "t2m_eval_std.npy")
    assert e.normalisation_problems(ev_mean, ev_std, mean, std) == {}
    # the release's relation: root and contact dims 25x smaller than the dataset's Std
    np.testing.assert_allclose((ev_std / std)[e.BIASED_DIMS], 1 / 25, rtol=0.01)
    own = e.normalisation_problems(mean, std, mean, std)
    assert "looks like the dataset's own Std" in own["std"]
    assert "zero or negative" in e.normalisation_problems(ev_std, ev_mean, mean, std)["std"]
    assert "shape (263,)" in e.normalisation_problems(ev_mean[:251], ev_std, mean, std)["mean"]
    broken = ev_std.copy()
    broken[7] = np.nan
    assert "NaN" in e.normalisation_problems(ev_mean, broken, mean, std)["std"]
    assert "Mean" in e.normalisation_problems(ev_mean + 3 * std, ev_std, mean, std)["mean"]
    assert "1/25" in e.normalisation_problems(ev_mean, 3 * ev_std, mean, std)["std"]


def test_saved_evaluator_round_trip_and_bad_file(tmp_path):
    torch.manual_seed(0)
    words = e.WordVectorizer.from_vocabulary(["walk", "person"], dim=6)
    small = e.EvaluatorConfig(text_hidden=4, movement_hidden=4, motion_hidden=4, embed_dim=4)
    ev = e.Evaluator(words, np.zeros(263, np.float32), np.ones(263, np.float32), "here", small)
    e.save_evaluator(ev, tmp_path / "e.pt", "stamp-1")
    loaded, stamp = e.load_evaluator(tmp_path / "e.pt")
    assert stamp == "stamp-1" and loaded.source == "here" and loaded.cfg == small
    feats = [np.random.default_rng(1).normal(size=(44, 263)).astype(np.float32)]
    np.testing.assert_allclose(loaded.embed_motions(feats), ev.embed_motions(feats), atol=1e-6)
    toks = [["a/DET", "person/NOUN", "walk/VERB"]]
    np.testing.assert_allclose(loaded.embed_texts(toks), ev.embed_texts(toks), atol=1e-6)
    assert not list(tmp_path.glob("*.tmp"))          # written atomically, nothing left over

    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        e.load_evaluator(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="none.pt"):
        e.load_evaluator(tmp_path / "none.pt")
