"""Tests of the Gaussian diffusion: schedule, forward marginals, loss, guidance, samplers."""
import math

import pytest
import torch

from fmsnb.diffusion import DiffusionConfig, GaussianDiffusion, guided
from fmsnb.mdm import MDM, MDMConfig

torch.set_num_threads(1)


def f(s: float) -> float:
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def tiny_model(n_feats=12, **kw) -> MDM:
    torch.manual_seed(0)
    cfg = MDMConfig(n_feats=n_feats, latent_dim=32, layers=2, heads=4, ff_size=64, text_dim=8,
                    max_len=16, **kw)
    return MDM(cfg).eval()


class Counting:
    """Wraps a model and counts its forward calls and the batch sizes they saw."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __call__(self, x, *args, **kw):
        self.batches.append(x.shape[0])
        return self.model(x, *args, **kw)


def test_schedule_matches_closed_form():
    d = GaussianDiffusion()
    T = 1000
    ac, betas = d.alphas_cumprod, d.betas
    assert d.T == T and ac.shape == betas.shape == (T,)
    for t in (0, 1, 10, 250, 500, 900, 990):          # before the clipped last step
        assert ac[t].item() == pytest.approx(f((t + 1) / T) / f(0), rel=1e-9)
        assert betas[t].item() == pytest.approx(1 - f((t + 1) / T) / f(t / T), rel=1e-9)
    assert betas.max().item() == pytest.approx(0.999) and betas[-1].item() == pytest.approx(0.999)
    assert (betas[:-1] < 0.999).all() and (betas > 0).all()
    assert torch.all(ac[1:] < ac[:-1])
    prev = d.alphas_cumprod_prev
    assert prev[0] == 1.0 and torch.equal(prev[1:], ac[:-1])
    expected = betas * (1 - prev) / (1 - ac)
    assert torch.allclose(d.posterior_variance, expected, rtol=1e-12)
    assert d.posterior_variance[0] == 0.0
    logv = d.posterior_log_variance_clipped
    assert logv[0] == pytest.approx(math.log(expected[1].item()))
    assert torch.allclose(logv[1:], expected[1:].log())


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="schedule"):
        GaussianDiffusion(DiffusionConfig(schedule="linear"))


def test_q_sample_marginals():
    d = GaussianDiffusion()
    t = torch.tensor([0, 100, 500, 999])
    x0 = torch.full((4, 20000, 1), 0.7)
    torch.manual_seed(0)
    xt = d.q_sample(x0, t)
    ac = d.alphas_cumprod[t].float()
    assert torch.allclose(xt.mean(dim=(1, 2)), ac.sqrt() * 0.7, atol=0.03)
    assert torch.allclose(xt.var(dim=(1, 2)), 1 - ac, atol=0.03)


def test_loss_is_masked_mean_of_squared_x0_error():
    d = GaussianDiffusion(DiffusionConfig(steps=50))

    def zeros(x, *args, **kw):                        # a "model" that always predicts 0
        return torch.zeros_like(x)

    x0 = torch.randn(2, 10, 5)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 4:] = False
    expected = ((x0[0] ** 2).mean() + (x0[1, :4] ** 2).mean()) / 2
    loss = d.loss(zeros, x0, mask, torch.zeros(2, 8))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    x0[1, 4:] = 100.0                                  # padding never counts
    assert d.loss(zeros, x0, mask, torch.zeros(2, 8)).item() == pytest.approx(loss.item())


def test_guidance_formula_in_one_batched_forward():
    model = tiny_model(n_grades=3)
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(3, 10, 12, generator=g), torch.randn(3, 8, generator=g)
    t, grade = torch.tensor([5, 500, 999]), torch.tensor([1, 2, 3])
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[0, 6:] = False
    with torch.no_grad():
        cond = model(x, t, text, mask, grade, drop=torch.zeros(3, dtype=torch.bool))
        uncond = model(x, t, text, mask, grade, drop=torch.ones(3, dtype=torch.bool))
        counted = Counting(model)
        out = guided(counted, x, t, text, mask, grade, scale=2.5)
        assert counted.batches == [6]
        assert torch.allclose(out, uncond + 2.5 * (cond - uncond), atol=1e-5)
        counted = Counting(model)
        assert torch.allclose(guided(counted, x, t, text, mask, grade, scale=1.0), cond)
        assert counted.batches == [3]


def test_timesteps():
    d = GaussianDiffusion(DiffusionConfig(steps=100, ddim_steps=10))
    assert d.timesteps("ddpm") == list(range(99, -1, -1))
    for n in (1, 7, 10, 50, 100):
        ts = d.timesteps("ddim", n if n != 10 else None)
        assert len(ts) == n and ts[0] == 99 and all(a > b for a, b in zip(ts, ts[1:]))
        assert n == 1 or ts[-1] == 0
    for bad in [("ddim", 0), ("ddim", 101), ("ddpm", 10), ("euler", None)]:
        with pytest.raises(ValueError):
            d.timesteps(*bad)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samplers_shape_padding_determinism(sampler):
    model = tiny_model(n_grades=3).train()
    d = GaussianDiffusion(DiffusionConfig(steps=20))
    text, grade = torch.randn(2, 8), torch.tensor([1, 3])
    mask = torch.ones(2, 14, dtype=torch.bool)
    mask[1, 9:] = False

    def run(seed):
        return d.sample(model, text, mask, grade, sampler=sampler, steps=None if sampler ==
                        "ddpm" else 5, generator=torch.Generator().manual_seed(seed),
                        progress=False)
    a, b, c = run(0), run(0), run(1)
    assert a.shape == (2, 14, 12) and torch.isfinite(a).all()
    assert (a[1, 9:] == 0).all() and (a[1, :9] != 0).any()
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert model.training                               # mode restored


def test_ddim_with_all_steps_and_eta_one_is_ddpm():
    model = tiny_model()
    d = GaussianDiffusion(DiffusionConfig(steps=20))
    text, mask = torch.randn(2, 8), torch.ones(2, 8, dtype=torch.bool)
    kw = dict(guidance=2.0, progress=False)
    ddpm = d.sample(model, text, mask, sampler="ddpm", generator=torch.Generator().manual_seed(3),
                    **kw)
    ddim = d.sample(model, text, mask, sampler="ddim", steps=20, eta=1.0,
                    generator=torch.Generator().manual_seed(3), **kw)
    assert torch.allclose(ddpm, ddim, atol=1e-4)
    deterministic = d.sample(model, text, mask, sampler="ddim", steps=20, eta=0.0,
                             generator=torch.Generator().manual_seed(3), **kw)
    assert not torch.allclose(ddpm, deterministic, atol=1e-3)


def test_model_overfits_one_batch():
    model = tiny_model(dropout=0.0, cond_drop_prob=0.0).train()
    d = GaussianDiffusion(DiffusionConfig(steps=100))
    g = torch.Generator().manual_seed(0)
    B, T, F = 4, 16, 12
    phase, freq = torch.rand(B, 1, F, generator=g) * 6.28, torch.rand(B, 1, F, generator=g) / 2
    x0 = torch.sin(torch.arange(T)[None, :, None] * (freq + 0.1) + phase)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[2, 10:] = False
    text = torch.randn(B, 8, generator=g)
    # A fixed evaluation: every sample at ten noise levels with fixed noise.
    t_eval = torch.arange(0, 100, 10).repeat_interleave(B)
    noise = torch.randn(len(t_eval), T, F, generator=g)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            loss = d.loss(model, x0.repeat(10, 1, 1), mask.repeat(10, 1), text.repeat(10, 1),
                          t=t_eval, noise=noise).item()
        model.train()
        return loss

    before = eval_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(200):
        loss = d.loss(model, x0, mask, text)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < before / 10


def test_grade_guidance_at_the_caption_scale_is_ordinary_guidance():
    model = tiny_model(n_grades=3)
    g = torch.Generator().manual_seed(0)
    x, text, plain_text = (torch.randn(*s, generator=g) for s in ((3, 16, 12), (3, 8), (3, 8)))
    t, mask = torch.tensor([5, 500, 999]), torch.ones(3, 16, dtype=torch.bool)
    grade = torch.tensor([1, 2, 3])
    plain = (plain_text, torch.zeros_like(grade))
    ordinary = guided(model, x, t, text, mask, grade, 2.5)
    same = guided(model, x, t, text, mask, grade, 2.5, plain, grade_scale=2.5)
    assert torch.allclose(same, ordinary, atol=1e-5)
    conditional = guided(model, x, t, text, mask, grade, 1.0)
    assert torch.allclose(guided(model, x, t, text, mask, grade, 1.0, plain, 1.0), conditional,
                          atol=1e-5)
    # A larger grade scale moves the prediction along (cond - plain) only.
    stronger = guided(model, x, t, text, mask, grade, 2.5, plain, grade_scale=5.0)
    free = guided(model, x, t, plain_text, mask, torch.zeros_like(grade), 1.0)
    assert torch.allclose(stronger - ordinary, 2.5 * (conditional - free), atol=1e-4)


def test_grade_guidance_acts_only_on_the_low_noise_steps_of_its_interval():
    model, batches = tiny_model(n_grades=3), []
    model.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    d = GaussianDiffusion()
    text, mask, grade = torch.randn(2, 8), torch.ones(2, 16, dtype=torch.bool), torch.tensor([1, 3])
    plain = (torch.randn(2, 8), torch.zeros_like(grade))
    steps = d.timesteps("ddim", 10)
    for interval in (1.0, 0.5, 0.3):
        batches.clear()
        d.sample(model, text, mask, grade, sampler="ddim", steps=10, progress=False,
                 generator=torch.Generator().manual_seed(0), plain=plain, grade_scale=6.0,
                 grade_interval=interval)
        # three rows a motion (grade, plain, null) below the interval, two above it
        assert batches == [6 if t < interval * 1000 else 4 for t in steps]
