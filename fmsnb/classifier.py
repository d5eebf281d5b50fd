"""The FMS-grade classifier of the paper's section 4.5: an LSTM trained with focal loss.

The paper judges whether generated motions carry their requested fitness grade by training an
LSTM (hidden size 120, ReLU, Linear(120 -> 3), softmax) on each dataset and reporting accuracy,
precision, recall, macro and micro F1, and confusion matrices. Its input size of 360 is not
explained; here the per-frame input is configurable: `features` (the 263 HumanML3D features,
normalised with the training set's statistics) or `joints` (22 x 3 root-relative positions),
optionally every k-th frame only (`frame_step`: an FMS grade shows in the whole movement's
shape, not in frame-to-frame detail, and the LSTM's cost grows with the frames it reads). In
training, each epoch reads every clip from a random one of its k phases (frames j, j + k, ...),
so the k subsampled copies of a clip augment the data instead of going unused.
The sequence is summarised by the LSTM's hidden state at the clip's last valid frame. Focal loss
(Lin et al. 2018) counters the real data's skew towards grade 2; with gamma = 0 it is plain
cross-entropy.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from tqdm.auto import tqdm

from fmsnb.config import ClassifierConfig
from fmsnb.fms import GRADES


class LSTMClassifier(nn.Module):
    """LSTM(input -> hidden) -> ReLU -> Linear(hidden -> 3); logits, softmax left to the loss."""

    def __init__(self, input_size: int, hidden: int = 120, n_classes: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, input_size) padded, lengths (B,) -> logits (B, 3)."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.fc(torch.relu(h[-1]))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean of -(1 - p_t)^gamma log p_t over the batch; target holds class indices 0..2."""
    log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    return (-(1.0 - log_p.exp()) ** gamma * log_p).mean()


def _check_frame_step(step) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"frame_step must be a whole number >= 1, got {step!r}")


def frame_inputs(motions: list[np.ndarray], kind: str, step: int = 1) -> list[np.ndarray]:
    """Per-frame classifier inputs (ceil(T / step), D) from features (T, 263) or joints
    (T, 22, 3), keeping frames 0, step, 2 * step, ..."""
    _check_frame_step(step)
    if kind == "features":
        return [np.asarray(m[::step], np.float32) for m in motions]
    if kind == "joints":
        out = []
        for m in motions:
            m = np.asarray(m[::step], np.float32).copy()
            m[..., [0, 2]] -= m[:, :1, [0, 2]]           # root-relative in the ground plane
            out.append(m.reshape(len(m), -1))
        return out
    raise ValueError(f"unknown classifier input {kind!r}; choose 'features' or 'joints'")


class GradeClassifier:
    """A trained classifier with the input normalisation it was trained with."""

    def __init__(self, cfg: ClassifierConfig, model: LSTMClassifier, mean, std):
        self.cfg, self.model, self.mean, self.std = cfg, model, mean, std

    def _batch(self, inputs: list[np.ndarray]):
        x = [torch.from_numpy((m - self.mean) / self.std) for m in inputs]
        return pad_sequence(x, batch_first=True), torch.tensor([len(m) for m in inputs])

    @torch.no_grad()
    def predict(self, motions: list[np.ndarray]) -> np.ndarray:
        """Grades 1..3 (N,) for motions given as the configured input kind."""
        self.model.eval()
        inputs = frame_inputs(motions, self.cfg.input, self.cfg.frame_step)
        preds = []
        for i in range(0, len(inputs), 256):
            x, lengths = self._batch(inputs[i:i + 256])
            preds.append(self.model(x, lengths).argmax(-1).numpy())
        return np.concatenate(preds) + 1


def train_classifier(motions: list[np.ndarray], grades, cfg: ClassifierConfig,
                     progress: bool = True) -> GradeClassifier:
    """Fit the LSTM on motions (features or joints per cfg.input) with grades in 1..3."""
    grades = np.asarray(grades)
    if not np.isin(grades, GRADES).all():
        raise ValueError(f"grades must be in {GRADES}, got {sorted(set(grades.tolist()))}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    _check_frame_step(cfg.frame_step)
    inputs = frame_inputs(motions, cfg.input)                     # every frame; phases below
    frames = np.concatenate(inputs)
    mean, std = frames.mean(0), frames.std(0) + 1e-6
    clf = GradeClassifier(cfg, LSTMClassifier(frames.shape[1], cfg.hidden), mean, std)
    opt = torch.optim.Adam(clf.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    target = torch.from_numpy(grades - 1).long()
    step, n_frames = cfg.frame_step, np.array([len(m) for m in inputs])
    clf.model.train()
    for _ in tqdm(range(cfg.epochs), desc="classifier epochs", disable=not progress):
        order = rng.permutation(len(inputs))
        phase = rng.integers(0, np.minimum(step, n_frames))      # a phase inside each clip
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            x, lengths = clf._batch([inputs[j][phase[j]::step] for j in idx])
            loss = focal_loss(clf.model(x, lengths), target[idx], cfg.gamma)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return clf


def row_shares(counts) -> np.ndarray:
    """A confusion matrix (K, K) of counts, rows = true class, divided by each row's total: the
    diagonal holds each class's recall. A row without items stays zero."""
    counts = np.asarray(counts)
    rows = counts.sum(1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)


def classification_report(true, pred) -> dict:
    """Accuracy, macro precision/recall/F1, micro F1 and the row-normalised confusion matrix."""
    true, pred = np.asarray(true), np.asarray(pred)
    cm = confusion_matrix(true, pred, labels=list(GRADES))
    return {
        "accuracy": float((true == pred).mean()),
        "precision": float(precision_score(true, pred, labels=list(GRADES), average="macro",
                                           zero_division=0)),
        "recall": float(recall_score(true, pred, labels=list(GRADES), average="macro",
                                     zero_division=0)),
        "macro_f1": float(f1_score(true, pred, labels=list(GRADES), average="macro",
                                   zero_division=0)),
        "micro_f1": float(f1_score(true, pred, labels=list(GRADES), average="micro",
                                   zero_division=0)),
        "confusion": cm.tolist(),
        "confusion_normalised": row_shares(cm).tolist(),
        "n": int(len(true)),
    }
