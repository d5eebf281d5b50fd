"""Gaussian diffusion as MDM uses it: cosine schedule, x0 prediction, classifier-free guidance.

The forward process noises a motion x0 to x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
with MDM's cosine schedule over T = 1000 steps (betas clipped at 0.999). The network predicts x0
directly and is trained with the L2 error on x0 over valid (unpadded) frames (the paper's eq. 2).
Sampling starts from Gaussian noise drawn from a `torch.Generator` and applies the guided
prediction uncond + s * (cond - uncond) (eq. 3), with both halves evaluated in one batched
forward pass. Two samplers: MDM's ancestral sampler over all T steps with the "fixed small"
(true posterior) variance and no clipping of x0 (`ddpm`), and DDIM on an evenly respaced
subsequence of steps (`ddim`, eta = 0 is deterministic given the starting noise), which makes
sampling on a CPU practical.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from fmsnb.config import DiffusionConfig


def cosine_alpha_bar(s: np.ndarray) -> np.ndarray:
    """Unnormalised cosine schedule f(s) = cos(((s + 0.008) / 1.008) * pi / 2)^2, s = t / T."""
    return np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2


def guided(model, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, mask: torch.Tensor,
           grade: torch.Tensor | None = None, scale: float = 2.5,
           plain: tuple[torch.Tensor, torch.Tensor | None] | None = None,
           grade_scale: float | None = None) -> torch.Tensor:
    """Classifier-free guided x0 (B, T, F): uncond + scale * (cond - uncond).

    cond and uncond come from ONE forward pass over the batch stacked twice, the second copy
    with the null condition; scale = 1 is plain conditional prediction (a single pass, B rows).
    Grade guidance (ours, beyond the paper) also takes `plain` = (text, grade) of the condition
    without its grade (the plain caption, grade 0) and guides the two parts apart:
    uncond + scale * (plain - uncond) + grade_scale * (cond - plain), one pass of 3 B rows;
    with grade_scale = scale it is the ordinary guidance again.
    """
    B = x.shape[0]
    if grade_scale is not None:
        plain_text, plain_grade = plain
        grades = None if grade is None else torch.cat([grade, plain_grade, grade])
        drop = torch.arange(3 * B, device=x.device) >= 2 * B
        out = model(torch.cat([x, x, x]), torch.cat([t, t, t]),
                    torch.cat([text, plain_text, text]), torch.cat([mask, mask, mask]),
                    grades, drop=drop)
        cond, plain_out, uncond = out[:B], out[B:2 * B], out[2 * B:]
        return uncond + scale * (plain_out - uncond) + grade_scale * (cond - plain_out)
    if scale == 1:
        return model(x, t, text, mask, grade, drop=torch.zeros(B, dtype=torch.bool,
                                                                 device=x.device))
    x2, t2, text2, mask2 = (torch.cat([a, a]) for a in (x, t, text, mask))
    grade2 = None if grade is None else torch.cat([grade, grade])
    drop = torch.arange(2 * B, device=x.device) >= B             # second copy: null condition
    out = model(x2, t2, text2, mask2, grade2, drop=drop)
    cond, uncond = out[:B], out[B:]
    return uncond + scale * (cond - uncond)


class GaussianDiffusion:
    """The schedule arrays (float64 tensors of length T, on the CPU) and the diffusion maths."""

    def __init__(self, cfg: DiffusionConfig | None = None):
        cfg = cfg or DiffusionConfig()
        if cfg.schedule != "cosine":
            raise ValueError(f"unknown noise schedule {cfg.schedule!r}; only 'cosine' exists")
        self.cfg = cfg
        T = self.T = cfg.steps
        f = cosine_alpha_bar(np.arange(T + 1) / T)
        betas = np.minimum(1.0 - f[1:] / f[:-1], 0.999)
        ac = np.cumprod(1.0 - betas)
        ac_prev = np.append(1.0, ac[:-1])
        post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
        self.betas = torch.from_numpy(betas)
        self.alphas_cumprod = torch.from_numpy(ac)
        self.alphas_cumprod_prev = torch.from_numpy(ac_prev)
        self.posterior_variance = torch.from_numpy(post_var)
        # post_var[0] is 0; its log is clipped to the next entry's (it is never used for noise).
        self.posterior_log_variance_clipped = torch.from_numpy(
            np.log(np.append(post_var[1], post_var[1:])))
        self.posterior_mean_coef1 = torch.from_numpy(betas * np.sqrt(ac_prev) / (1.0 - ac))
        self.posterior_mean_coef2 = torch.from_numpy(
            (1.0 - ac_prev) * np.sqrt(1.0 - betas) / (1.0 - ac))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, T, F) drawn from q(x_t | x0) for per-sample steps t (B,)."""
        noise = torch.randn_like(x0) if noise is None else noise
        ac = self.alphas_cumprod[t.cpu()].to(x0.device, x0.dtype)[:, None, None]
        return ac.sqrt() * x0 + (1.0 - ac).sqrt() * noise

    def loss(self, model, x0: torch.Tensor, mask: torch.Tensor, text: torch.Tensor,
             grade: torch.Tensor | None = None, t: torch.Tensor | None = None,
             noise: torch.Tensor | None = None, drop: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Masked L2 on x0: per sample the mean over valid frames and features, then the batch mean.

        x0 (B, T, F), mask (B, T) True = valid; t (B,) defaults to uniform draws from 0..T-1,
        noise (B, T, F) to standard normal draws. drop (B,) bool is the condition dropout; by
        default the model draws its own (it is in train mode when training).
        """
        B = x0.shape[0]
        t = torch.randint(0, self.T, (B,), device=x0.device) if t is None else t
        pred = model(self.q_sample(x0, t, noise), t, text, mask, grade, drop=drop)
        m = mask[..., None].to(x0.dtype)
        per_sample = ((pred - x0) ** 2 * m).sum((1, 2)) / (m.sum((1, 2)) * x0.shape[-1])
        return per_sample.mean()

    def timesteps(self, sampler: str, steps: int | None = None) -> list[int]:
        """The descending steps a sampler visits: all T for `ddpm`, an even subset for `ddim`."""
        if sampler == "ddpm":
            if steps not in (None, self.T):
                raise ValueError(f"the ddpm sampler runs all {self.T} steps, not {steps}")
            return list(range(self.T - 1, -1, -1))
        if sampler == "ddim":
            n = self.cfg.ddim_steps if steps is None else steps
            if not 1 <= n <= self.T:
                raise ValueError(f"ddim steps must lie in 1..{self.T}, got {n}")
            # From T-1 down to 0 inclusive; steps >= 1 apart, so rounding keeps them distinct.
            return np.round(np.linspace(self.T - 1, 0, n)).astype(int).tolist()
        raise ValueError(f"unknown sampler {sampler!r}; choose 'ddim' or 'ddpm'")

    def ddpm_step(self, x0: torch.Tensor, x_t: torch.Tensor, t: int,
                  noise: torch.Tensor) -> torch.Tensor:
        """x_{t-1} drawn from the posterior q(x_{t-1} | x_t, x0) with its true variance."""
        mean = (self.posterior_mean_coef1[t].item() * x0
                + self.posterior_mean_coef2[t].item() * x_t)
        if t == 0:
            return mean
        return mean + (0.5 * self.posterior_log_variance_clipped[t]).exp().item() * noise

    def ddim_step(self, x0: torch.Tensor, x_t: torch.Tensor, t: int, t_prev: int, eta: float,
                  noise: torch.Tensor) -> torch.Tensor:
        """x_{t_prev} by DDIM (Song et al. 2021) from the predicted x0; t_prev = -1 ends at x0.

        eta = 0 is deterministic; eta = 1 with t_prev = t - 1 is the ancestral (ddpm) step.
        """
        a_t = self.alphas_cumprod[t].item()
        a_prev = self.alphas_cumprod[t_prev].item() if t_prev >= 0 else 1.0
        eps = (x_t - a_t ** 0.5 * x0) / (1.0 - a_t) ** 0.5
        sigma = eta * ((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)) ** 0.5
        # max() guards against rounding below zero when eta = 1.
        return (a_prev ** 0.5 * x0 + max(1.0 - a_prev - sigma ** 2, 0.0) ** 0.5 * eps
                + sigma * noise)

    @torch.no_grad()
    def sample(self, model, text: torch.Tensor, mask: torch.Tensor,
               grade: torch.Tensor | None = None, guidance: float = 2.5, sampler: str = "ddim",
               steps: int | None = None, eta: float = 0.0,
               generator: torch.Generator | None = None, progress: bool = True,
               plain: tuple[torch.Tensor, torch.Tensor | None] | None = None,
               grade_scale: float | None = None, grade_interval: float = 1.0,
               bar=None) -> torch.Tensor:
        """Generate x0 (B, T, n_feats) for text (B, text_dim) and mask (B, T) True = valid.
        `plain` and `grade_scale`: grade guidance (see `guided`), applied only at the steps
        t < grade_interval * T, the low-noise end (ours); the steps above it, where the
        motion's overall shape is decided, take the ordinary guidance. `bar`: a caller's
        progress bar, advanced once per denoising step (instead of this call's own).

        Noise comes from `generator` (drawn on its device, then moved to the model's), so a seed
        fixes the result. Padded frames of the output are zero. The model runs in eval mode and
        is put back in its previous mode afterwards.
        """
        timesteps = self.timesteps(sampler, steps)
        device = next(model.parameters()).device
        text, mask = text.to(device), mask.to(device).bool()
        grade = None if grade is None else grade.to(device)
        if grade_scale is not None:
            plain = (plain[0].to(device), None if plain[1] is None else plain[1].to(device))
        shape = (*mask.shape, model.cfg.n_feats)
        noise_device = generator.device if generator is not None else "cpu"

        def randn():
            return torch.randn(shape, generator=generator, device=noise_device).to(device)

        x = randn()
        was_training = model.training
        model.eval()
        try:
            for i, t in enumerate(tqdm(timesteps, desc=f"sampling ({sampler})",
                                       disable=not progress or bar is not None)):
                grade_here = grade_scale if t < grade_interval * self.cfg.steps else None
                x0 = guided(model, x, torch.full((shape[0],), t, dtype=torch.long, device=device),
                            text, mask, grade, guidance, plain, grade_here)
                # Drawn at every step, so that both samplers consume the generator identically.
                noise = randn()
                if sampler == "ddpm":
                    x = self.ddpm_step(x0, x, t, noise)
                else:
                    t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                    x = self.ddim_step(x0, x, t, t_prev, eta, noise)
                if bar is not None:
                    bar.update(1)
        finally:
            model.train(was_training)
        return x * mask[..., None].to(x.dtype)
