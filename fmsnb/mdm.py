"""The Motion Diffusion Model denoiser (Tevet et al. 2023) that the paper trains and fine-tunes.

A transformer encoder reads one condition token followed by the noisy motion frames and predicts
the clean motion x0 (not the noise). The condition token is Linear(text embedding) plus an MLP of
the sinusoidal timestep embedding, plus, for the `token` conditioning style, a learned FMS-grade
embedding. Every token gets the sinusoidal positional encoding and dropout; the first output token
is discarded and the rest are projected back to the per-frame features. For classifier-free
guidance the condition is replaced by the null condition (text embedding zeroed, grade index 0)
for `cond_drop_prob` of the training samples, as MDM does. The text embedding passes through a
fixed gain matrix `text_gain` (text_dim, text_dim) before the projection: the identity until
training sets it (`set_text_gain`), so that captions which differ only in a side or a grade,
whose embeddings are 0.98-0.99 alike, differ in the projection's input as much as different
movements do; the model's function class is unchanged, only what Adam's steps move faster.
With `patch` = k > 1 (ours, not MDM's) each token carries k consecutive frames: the transformer
runs on T / k tokens, so a step costs about k times less and a CPU trains k times more steps
in the same minutes; the frames of a token come out of one linear map of its output. Released
MDM lets padded frames take part in attention; `mask_padding=True` (ours) hides them with a
key-padding mask instead, and `mask_padding=False` keeps MDM's behaviour for faithfulness.
With `words` = L > 0 (ours) the text input also carries the encoder's per-token outputs, L rows
of `word_dim` after the pooled embedding (`text.Words`); a learned attention pooling
(`WordPool`) adds what it reads from them to the condition token, so that a grade's word or
number, one token of a caption's fifteen, is not averaged away; with `word_tokens` the rows
instead join the sequence as tokens of their own, after the motion's, for every layer to attend.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from fmsnb.config import MDMConfig


def sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal encoding of positions pos (N,) -> (N, dim), sin/cos interleaved."""
    freq = torch.exp(torch.arange(0, dim, 2, device=pos.device, dtype=torch.float32)
                     * (-math.log(10000.0) / dim))
    angle = pos.float()[:, None] * freq                  # (N, dim/2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)


class MDM(nn.Module):
    """x_t (B, T, n_feats), t (B,), text (B, text_dim) -> predicted x0 (B, T, n_feats).
    text: the pooled embedding (B, text_dim - words * word_dim), then the token rows flattened."""

    def __init__(self, cfg: MDMConfig):
        super().__init__()
        if cfg.patch < 1:
            raise ValueError(f"patch must be >= 1 frame per token, got {cfg.patch}")
        if cfg.latent_dim % 2 or cfg.latent_dim % cfg.heads:
            raise ValueError(f"latent_dim {cfg.latent_dim} must be even and divisible by "
                             f"heads {cfg.heads}")
        pooled = cfg.text_dim - cfg.words * cfg.word_dim
        if cfg.words < 0 or pooled < 1 or (cfg.words > 0) != (cfg.word_dim > 0):
            raise ValueError(f"text_dim {cfg.text_dim} must hold the pooled embedding and "
                             f"words {cfg.words} x word_dim {cfg.word_dim}")
        self.cfg = cfg
        d = cfg.latent_dim
        self.input_proj = nn.Linear(cfg.n_feats * cfg.patch, d)
        self.text_proj = nn.Linear(pooled, d)
        self.register_buffer("text_gain", torch.eye(pooled))
        self.word_pool = WordPool(cfg.word_dim, d, cfg.heads) if cfg.words and not \
            cfg.word_tokens else None
        if cfg.words and cfg.word_tokens:
            self.word_norm, self.word_proj = nn.LayerNorm(cfg.word_dim), nn.Linear(cfg.word_dim, d)
        else:
            self.word_proj = None
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        # Index 0 is "no grade": the null condition and grade-less samples use it.
        self.grade_emb = nn.Embedding(cfg.n_grades + 1, d) if cfg.n_grades else None
        self.pos_drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff_size, cfg.dropout,
                                           cfg.activation, batch_first=True)
        # Nested tensors would change padded outputs between train and eval; keep them dense.
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.output_proj = nn.Linear(d, cfg.n_feats * cfg.patch)

    def param_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                mask: torch.Tensor, grade: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """Predict x0 (B, T, n_feats).

        x_t (B, T, n_feats) noisy motion; t (B,) long diffusion steps; text (B, text_dim);
        mask (B, T) bool, True = valid frame; grade (B,) long in 1..n_grades (0 = no grade) or
        None; drop (B,) bool, True = give that sample the null condition (no text, no grade).
        With drop None the model draws it with cond_drop_prob in train mode, never in eval mode.
        """
        cfg = self.cfg
        B, T, F = x_t.shape
        if F != cfg.n_feats or T > cfg.max_len:
            raise ValueError(f"motion of shape {tuple(x_t.shape)} does not fit the model "
                             f"(n_feats {cfg.n_feats}, max_len {cfg.max_len})")
        if text.shape != (B, cfg.text_dim):
            raise ValueError(f"text embedding of shape {tuple(text.shape)}, expected "
                             f"({B}, {cfg.text_dim})")
        if drop is None:
            drop = (torch.rand(B, device=x_t.device) < cfg.cond_drop_prob) if self.training \
                else torch.zeros(B, dtype=torch.bool, device=x_t.device)
        keep = (~drop.bool()).to(text.dtype)[:, None]
        text = text * keep
        pooled = text.shape[1] - cfg.words * cfg.word_dim
        cond = (self.text_proj(text[:, :pooled] @ self.text_gain)
                + self.time_mlp(sinusoid(t, cfg.latent_dim)))
        words = text[:, pooled:].reshape(B, cfg.words, cfg.word_dim)
        if self.word_pool is not None:
            cond = cond + self.word_pool(words)
        if grade is not None and self.grade_emb is None:
            raise ValueError("a grade was given but the model has n_grades=0 (no grade token)")
        if self.grade_emb is not None:
            if grade is None:
                grade = torch.zeros(B, dtype=torch.long, device=x_t.device)
            elif grade.min() < 0 or grade.max() > cfg.n_grades:
                raise ValueError(f"grades must lie in 0..{cfg.n_grades}, got {grade.tolist()}")
            cond = cond + self.grade_emb(grade.long() * keep.squeeze(1).long())

        k = cfg.patch
        n = -(-T // k)                                                       # tokens, T / k up
        frames = nn.functional.pad(x_t, (0, 0, 0, n * k - T)).reshape(B, n, k * F)
        seq = torch.cat([cond[:, None], self.input_proj(frames)], dim=1)    # (B, 1+n, d)
        seq = self.pos_drop(seq + sinusoid(torch.arange(n + 1, device=x_t.device),
                                           cfg.latent_dim))
        pad = None
        if cfg.mask_padding:       # True marks keys to ignore; the condition token is always kept
            valid = nn.functional.pad(mask.bool(), (0, n * k - T)).reshape(B, n, k).any(-1)
            pad = torch.cat([torch.zeros_like(valid[:, :1]), ~valid], dim=1)
        if self.word_proj is not None:
            present = words.abs().sum(-1) > 0                               # (B, L)
            w = int(present.sum(1).max())
            # Word tokens go after the motion tokens, which keep their positions, and only as
            # many as the batch's longest caption has: what a motion gets does not depend on
            # the captions it is batched with. The encoder's outputs already carry word order.
            if w:
                seq = torch.cat([seq, self.word_proj(self.word_norm(words[:, :w]))], dim=1)
                keys = torch.zeros(B, n + 1, dtype=torch.bool, device=x_t.device) \
                    if pad is None else pad
                pad = torch.cat([keys, ~present[:, :w]], dim=1)
        # PyTorch's fused inference path attends through a masked softmax that makes a padded
        # batch about twice as slow on a CPU as the regular path (same numbers): skip it there.
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(fast and (x_t.device.type != "cpu" or pad is None))
        try:
            out = self.encoder(seq, src_key_padding_mask=pad)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast)
        return self.output_proj(out[:, 1:n + 1]).reshape(B, n * k, F)[:, :T]


class WordPool(nn.Module):
    """Learned attention pooling (ours) of the encoder's per-token outputs: words (B, L, w),
    zero rows for padding, -> (B, d), added to the condition token. One learned query per head
    picks the tokens that matter by their content, such as the grade's word or number, which
    the encoder's mean-pooled sentence vector averages away among the caption's other words.
    The output layer starts at zero, so a model gains it without changing what it computes.
    A caption without words (the null condition) gives zero."""

    def __init__(self, word_dim: int, d: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(word_dim)
        self.query = nn.Parameter(torch.randn(1, 1, d) * d ** -0.5)
        self.attend = nn.MultiheadAttention(d, heads, kdim=word_dim, vdim=word_dim,
                                            batch_first=True)
        self.out = nn.Linear(d, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        empty = words.abs().sum(-1) == 0                                   # (B, L) padding
        none = empty.all(1)                                                 # (B,) no words
        # A row with no words attends to its first (zero) slot instead of to nothing (NaN).
        empty = empty & ~(none[:, None] & (torch.arange(words.shape[1],
                                                        device=words.device) == 0))
        query = self.query.expand(len(words), -1, -1)
        keys = self.norm(words)
        pooled, _ = self.attend(query, keys, keys, key_padding_mask=empty, need_weights=False)
        return self.out(pooled[:, 0]) * (~none).to(words.dtype)[:, None]


def text_gain(table: torch.Tensor, cap: float) -> torch.Tensor:
    """A gain matrix (D, D) for caption embeddings table (N, D): along each principal direction
    of the table's spread, the gain sqrt(largest variance / its variance), at most `cap`, so the
    small differences between captions (side, grade) are amplified up to `cap` times; directions
    the table does not vary in keep gain 1. cap <= 1 gives the identity."""
    D = table.shape[1]
    if cap <= 1 or len(table) < 2:
        return torch.eye(D)
    x = table.double() - table.double().mean(0)
    var, vec = torch.linalg.eigh(x.T @ x / (len(table) - 1))
    seen = var > var.max() * 1e-8
    gain = torch.ones_like(var)
    gain[seen] = (var.max() / var[seen]).sqrt().clamp(max=cap)
    return ((vec * gain) @ vec.T).float()


@torch.no_grad()
def set_text_gain(model: MDM, gain: torch.Tensor) -> None:
    """Replace the model's text gain, re-expressing text_proj so the model computes exactly
    what it did before (W' = W G_old G_new^-1): only the training dynamics change."""
    old, new = model.text_gain.double(), gain.double()
    # (x G_new) W'^T = (x G_old) W^T for every x  <=>  W' = W G_old^T G_new^-T
    weight = model.text_proj.weight.double() @ torch.linalg.solve(new, old).T
    model.text_proj.weight.copy_(weight.to(model.text_proj.weight.dtype))
    model.text_gain.copy_(new.to(model.text_gain.dtype))
