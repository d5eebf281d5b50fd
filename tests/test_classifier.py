import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fmsnb import classifier as c


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    logits, target = torch.randn(16, 3), torch.randint(0, 3, (16,))
    assert torch.allclose(c.focal_loss(logits, target, 0.0), F.cross_entropy(logits, target))


def test_focal_loss_down_weights_easy_examples():
    easy = torch.tensor([[10.0, 0.0, 0.0]])
    target = torch.tensor([0])
    assert c.focal_loss(easy, target, 2.0) < 1e-3 * F.cross_entropy(easy, target)


def toy_set(rng, n=90):
    """Grade g moves with amplitude g: separable by the size of the motion."""
    grades = rng.integers(1, 4, n)
    motions = []
    for g in grades:
        T = rng.integers(20, 40)
        t = np.linspace(0, 2 * np.pi, T)[:, None]
        motions.append((g * np.sin(t) + 0.1 * rng.normal(size=(T, 6))).astype(np.float32))
    return motions, grades


def test_classifier_learns_a_separable_toy_problem():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    train_m, train_g = toy_set(rng)
    test_m, test_g = toy_set(rng, 60)
    clf = c.train_classifier(train_m, train_g, c.ClassifierConfig(epochs=40, lr=5e-3),
                             progress=False)
    report = c.classification_report(test_g, clf.predict(test_m))
    assert report["accuracy"] >= 0.9
    assert np.array(report["confusion"]).sum() == 60


def test_report_of_perfect_and_constant_predictions():
    true = np.array([1, 2, 3, 2, 2])
    perfect = c.classification_report(true, true)
    assert perfect["accuracy"] == perfect["macro_f1"] == perfect["micro_f1"] == 1.0
    constant = c.classification_report(true, np.full(5, 2))
    assert constant["accuracy"] == pytest.approx(0.6)
    assert constant["micro_f1"] == pytest.approx(0.6)      # micro F1 equals accuracy
    assert constant["recall"] == pytest.approx(1 / 3)
    np.testing.assert_allclose(np.array(constant["confusion_normalised"])[:, 1], 1.0)


def test_joint_inputs_are_root_relative_and_bad_grades_raise():
    j = np.random.default_rng(1).normal(size=(10, 22, 3))
    flat = c.frame_inputs([j + np.array([5.0, 0.0, 5.0])], "joints")[0]
    np.testing.assert_allclose(flat, c.frame_inputs([j], "joints")[0], atol=1e-5)
    with pytest.raises(ValueError, match="grades"):
        c.train_classifier([j.reshape(10, -1)], [4], c.ClassifierConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="unknown classifier input"):
        c.frame_inputs([j], "pixels")


def test_frame_step_keeps_every_kth_frame_for_training_and_prediction():
    motions = [np.arange(30, dtype=np.float32).reshape(10, 3)]
    kept = c.frame_inputs(motions, "features", step=4)[0]
    np.testing.assert_array_equal(kept[:, 0], [0, 12, 24])             # frames 0, 4, 8
    assert c.frame_inputs([np.zeros((10, 22, 3))], "joints", 3)[0].shape == (4, 66)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="frame_step"):
            c.frame_inputs(motions, "features", bad)
    rng = np.random.default_rng(0)
    train_m, train_g = toy_set(rng)
    clf = c.train_classifier(train_m, train_g, c.ClassifierConfig(epochs=1, frame_step=2),
                             progress=False)
    assert clf.mean.shape == (6,) and clf.predict(train_m[:5]).shape == (5,)


def test_training_reads_every_phase_of_the_subsampled_frames(monkeypatch):
    firsts = []
    batch = c.GradeClassifier._batch

    def recording(self, inputs):
        firsts.extend(float(m[0, 0]) for m in inputs)
        return batch(self, inputs)
    monkeypatch.setattr(c.GradeClassifier, "_batch", recording)
    ramps = [np.arange(12, dtype=np.float32)[:, None] + np.zeros((1, 2), np.float32)] * 6
    c.train_classifier(ramps, [1, 2, 3] * 2, c.ClassifierConfig(epochs=3, frame_step=3),
                       progress=False)
    assert set(firsts) == {0.0, 1.0, 2.0}         # clips start at frame 0, 1 or 2 in training
    firsts.clear()
    c.train_classifier(ramps, [1, 2, 3] * 2, c.ClassifierConfig(epochs=1, frame_step=3),
                       progress=False).predict(ramps)
    assert firsts[-6:] == [0.0] * 6              # prediction always reads from frame 0
