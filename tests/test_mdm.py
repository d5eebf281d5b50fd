"""Tests of the MDM denoiser: shapes, padding mask, grade token, condition dropout."""
import pytest
import torch

from fmsnb.mdm import MDM, MDMConfig, sinusoid

torch.set_num_threads(1)

B, T, F, TEXT = 3, 12, 263, 16


def tiny(**kw) -> MDM:
    torch.manual_seed(0)
    cfg = MDMConfig(**{"n_feats": F, "latent_dim": 32, "layers": 2, "heads": 4, "ff_size": 64,
                       "text_dim": TEXT, "max_len": 24, **kw})
    return MDM(cfg).eval()


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    t = torch.randint(0, 1000, (B,), generator=g)
    text = torch.randn(B, TEXT, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 7:] = False
    mask[2, 4:] = False
    return x, t, text, mask


def test_sinusoid_matches_formula():
    pos = torch.tensor([0.0, 1.0, 7.0, 999.0])
    angle = pos[:, None] / 10000 ** (torch.arange(16) * 2 / 32)     # (4, 16)
    pe = sinusoid(pos, 32)
    assert torch.allclose(pe[:, 0::2], angle.sin(), atol=1e-4)
    assert torch.allclose(pe[:, 1::2], angle.cos(), atol=1e-4)


def test_forward_shape_finite_and_deterministic_in_eval():
    model = tiny()
    x, t, text, mask = inputs()
    out = model(x, t, text, mask)
    assert out.shape == (B, T, F) and torch.isfinite(out).all()
    assert torch.equal(out, model(x, t, text, mask))
    # The output depends on the timestep and on the text.
    assert not torch.allclose(out, model(x, (t + 500) % 1000, text, mask))
    assert not torch.allclose(out, model(x, t, text + 1.0, mask))


@pytest.mark.parametrize("mask_padding", [True, False])
def test_key_padding_mask(mask_padding):
    model = tiny(mask_padding=mask_padding)
    x, t, text, mask = inputs()
    changed = x.clone()
    changed[~mask] = 50.0 * torch.randn(int((~mask).sum()), F)
    a, b = model(x, t, text, mask), model(changed, t, text, mask)
    same_on_valid = torch.allclose(a[mask], b[mask], atol=1e-5)
    assert same_on_valid == mask_padding


def test_cpu_inference_skips_the_fused_path_with_the_same_numbers(monkeypatch):
    model = tiny()
    x, t, text, mask = inputs()
    with torch.no_grad():
        ours = model(x, t, text, mask)
        assert torch.backends.mha.get_fastpath_enabled()          # the switch is restored
        monkeypatch.setattr(torch.backends.mha, "set_fastpath_enabled", lambda on: None)
        fused = model(x, t, text, mask)                           # PyTorch's fused path
    assert torch.allclose(ours[mask], fused[mask], atol=1e-5)


def test_grade_token_changes_output_and_is_dropped_with_text():
    model = tiny(n_grades=3)
    x, t, text, mask = inputs()
    g1, g3 = torch.full((B,), 1), torch.full((B,), 3)
    no, yes = torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)
    assert not torch.allclose(model(x, t, text, mask, g1, no), model(x, t, text, mask, g3, no))
    # The null condition ignores grade and text alike.
    null = model(x, t, text, mask, g1, yes)
    assert torch.allclose(null, model(x, t, -text, mask, g3, yes), atol=1e-6)
    assert torch.allclose(null, model(x, t, torch.zeros_like(text), mask, None, no), atol=1e-6)
    # A missing grade is the "no grade" index 0.
    assert torch.allclose(model(x, t, text, mask, None), model(x, t, text, mask, g1 * 0))


def test_grade_embedding_adds_its_parameters():
    assert tiny(n_grades=3).param_count() - tiny().param_count() == 4 * 32
    assert tiny().param_count() == sum(p.numel() for p in tiny().parameters())


def test_bad_inputs_raise():
    x, t, text, mask = inputs()
    with pytest.raises(ValueError, match="n_grades=0"):
        tiny()(x, t, text, mask, torch.ones(B, dtype=torch.long))
    with pytest.raises(ValueError, match="grades must lie"):
        tiny(n_grades=3)(x, t, text, mask, torch.full((B,), 4))
    with pytest.raises(ValueError, match="does not fit"):
        tiny()(x[..., :10], t, text, mask)
    with pytest.raises(ValueError, match="text embedding"):
        tiny()(x, t, text[:, :5], mask)


def test_condition_dropout_rate_in_training_only():
    n = 4000
    model = tiny(cond_drop_prob=0.3)
    seen = []
    model.text_proj.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    x = torch.randn(n, 2, F)
    t = torch.randint(0, 1000, (n,))
    text = torch.randn(n, TEXT)
    mask = torch.ones(n, 2, dtype=torch.bool)
    with torch.no_grad():
        model.train()
        torch.manual_seed(1)
        model(x, t, text, mask)
        model.eval()
        model(x, t, text, mask)
    dropped_train = (seen[0] == 0).all(dim=1).float().mean().item()
    dropped_eval = (seen[1] == 0).all(dim=1).float().mean().item()
    assert abs(dropped_train - 0.3) < 0.03
    assert dropped_eval == 0.0


def test_text_gain_amplifies_small_differences_and_keeps_the_function():
    from fmsnb.mdm import set_text_gain, text_gain
    g = torch.Generator().manual_seed(1)
    base = torch.nn.functional.normalize(torch.randn(4, TEXT, generator=g), dim=1)
    table = torch.cat([base, base + 0.01 * torch.randn(4, TEXT, generator=g)])  # near-twins
    gain = text_gain(table, cap=50.0)
    raw = (table[:4] - table[4:]).norm(dim=1) / (table[:4] - table[1:5]).norm(dim=1)
    gained = (table[:4] @ gain - table[4:] @ gain).norm(dim=1) / \
        (table[:4] @ gain - table[1:5] @ gain).norm(dim=1)
    assert (gained > 5 * raw).all()                # twins now differ far more, relatively
    spread = torch.linalg.svd(table - table.mean(0), full_matrices=False).Vh[:7]   # rank 7
    unseen = torch.randn(TEXT, generator=g)
    unseen -= spread.T @ (spread @ unseen)         # outside the table's spread: gain 1
    assert torch.allclose(unseen @ gain, unseen, atol=1e-4)
    assert torch.equal(text_gain(table, cap=1.0), torch.eye(TEXT))
    model = tiny()
    x, t, text, mask = inputs()
    before = model(x, t, text, mask)
    set_text_gain(model, gain)
    assert torch.allclose(model(x, t, text, mask), before, atol=1e-4)
    assert torch.equal(model.text_gain, gain)


def test_word_pool_starts_silent_then_reads_the_words():
    words, width = 5, 8
    plain, worded = tiny(), tiny(text_dim=TEXT + words * width, words=words, word_dim=width)
    worded.load_state_dict(plain.state_dict(), strict=False)
    x, t, text, mask = inputs()
    rows = torch.randn(B, words, width)
    rows[0, 3:] = 0                                     # a shorter caption: padding rows
    with_words = torch.cat([text, rows.flatten(1)], dim=1)
    assert torch.allclose(worded(x, t, with_words, mask), plain(x, t, text, mask), atol=1e-6)

    torch.nn.init.normal_(worded.word_pool.out.weight)  # as training would move it
    out = worded(x, t, with_words, mask)
    changed = rows.clone()
    changed[1, 2] += 1.0
    moved = worded(x, t, torch.cat([text, changed.flatten(1)], dim=1), mask)
    assert not torch.allclose(moved[1], out[1]) and torch.allclose(moved[0], out[0])
    shorter = tiny(text_dim=TEXT + 3 * width, words=3, word_dim=width)
    shorter.load_state_dict(worded.state_dict())
    cut = shorter(x, t, torch.cat([text, rows[:, :3].flatten(1)], 1), mask)
    assert torch.allclose(cut[0], out[0], atol=1e-5)    # caption 0's padding rows count nothing
    null = worded(x, t, torch.zeros_like(with_words), mask)
    assert torch.isfinite(null).all()
    assert torch.allclose(null, worded(x, t, with_words, mask,
                                       drop=torch.ones(B, dtype=torch.bool)))
    with pytest.raises(ValueError, match="words 5 x word_dim 8"):
        tiny(text_dim=words * width, words=words, word_dim=width)


def test_word_tokens_join_the_sequence_whatever_the_batch():
    words, width = 6, 8
    model = tiny(text_dim=TEXT + words * width, words=words, word_dim=width, word_tokens=True)
    assert model.word_pool is None and model.word_proj is not None
    x, t, text, mask = inputs()
    rows = torch.randn(B, words, width)
    rows[:, 4:] = 0                                     # every caption has 4 words
    out = model(x, t, torch.cat([text, rows.flatten(1)], 1), mask)
    longer = rows.clone()
    longer[2, 4:] = torch.randn(2, width)               # another caption grows: the others keep
    moved = model(x, t, torch.cat([text, longer.flatten(1)], 1), mask)
    assert torch.allclose(moved[:2], out[:2], atol=1e-5) and not torch.allclose(moved[2], out[2])
    alone = model(x[:1], t[:1], torch.cat([text, rows.flatten(1)], 1)[:1], mask[:1])
    assert torch.allclose(alone, out[:1], atol=1e-5)
    null = model(x, t, torch.zeros(B, model.cfg.text_dim), mask)
    assert torch.isfinite(null).all() and null.shape == x.shape
