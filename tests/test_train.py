"""Tests of the training loop: exact resume, atomic checkpoints, config checks, no encoder calls
in the loop, the loss log, EMA, grade conditioning. Tiny model, tiny corpus, CPU.

`FakeEncoder`, `tiny_split`, `tiny_model` are reused by test_sample.py and test_bench.py.
"""
import csv
import dataclasses
import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from fmsnb import atomic, train as T
from fmsnb.captions import STYLES
from fmsnb.dataset import Caption, MotionDataset, read_split, write_clip, write_mean_std, \
    write_splits
from fmsnb.diffusion import DiffusionConfig, GaussianDiffusion
from fmsnb.mdm import MDM, MDMConfig
from fmsnb.text import CaptionCache

torch.set_num_threads(1)

MAX_LEN, TEXT_DIM = 64, 8
CLIPS = {"c0": "a person walks forward", "c1": "a person jumps up", "c2": "a person squats down",
         "c3": "a person waves the left hand", "c4": "a person turns around"}


class FakeEncoder:
    """Deterministic hash-based text encoder: caption -> (dim,) vector; counts its calls."""
    name, key, dim = "fake", "fake-8", TEXT_DIM

    def __init__(self):
        self.calls, self.encoded = 0, []

    def encode(self, captions, batch_size=None, progress=False):
        self.calls += 1
        self.encoded += list(captions)
        seeds = [int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) for c in captions]
        return torch.stack([torch.randn(self.dim, generator=torch.Generator().manual_seed(s))
                            for s in seeds]) if seeds else torch.empty(0, self.dim)


def tiny_split(root, clips=CLIPS):
    """A five-clip corpus (random features, 44..64 frames) in the HumanML3D layout; its train
    split as SplitData."""
    rng = np.random.default_rng(0)
    for i, (name, text) in enumerate(clips.items()):
        n = 44 + 5 * i
        write_clip(root, name, rng.normal(size=(n, 263)), rng.normal(size=(n, 22, 3)),
                   [Caption(text, [f"{w}/X" for w in text.split()]),
                    Caption(text + " slowly", [f"{w}/X" for w in (text + " slowly").split()])])
    write_splits(root, {"train": list(clips)})
    write_mean_std(root, list(clips))
    return read_split(root, "train", progress=False)


def tiny_model(n_grades=0, seed=0) -> MDM:
    torch.manual_seed(seed)
    return MDM(MDMConfig(latent_dim=16, layers=1, heads=2, ff_size=32, text_dim=TEXT_DIM,
                         max_len=MAX_LEN, n_grades=n_grades))


def tiny_diffusion() -> GaussianDiffusion:
    return GaussianDiffusion(DiffusionConfig(steps=50))


CFG = T.TrainConfig(lr=1e-3, batch_size=3, steps=6, checkpoint_every=3, log_every=2,
                    ema_decay=0.9, seed=3)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return tiny_split(tmp_path_factory.mktemp("corpus"))


def run(split, run_dir, cfg=CFG, model=None, cache=None, **kw):
    model = model or tiny_model()
    cache = CaptionCache(FakeEncoder()) if cache is None else cache
    history = T.train(model, tiny_diffusion(), MotionDataset(split, max_len=MAX_LEN), cache, cfg,
                      run_dir, device="cpu", progress=False, **kw)
    return model, history


def assert_same_tensors(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_batch_indices_cover_each_epoch_and_depend_only_on_step():
    n, b = 7, 3
    stream = np.concatenate([T.batch_indices(0, s, b, n) for s in range(7)])   # 3 epochs
    for e in range(3):
        assert sorted(stream[e * n:(e + 1) * n]) == list(range(n))
    assert not np.array_equal(stream[:n], stream[n:2 * n])
    assert np.array_equal(T.batch_indices(0, 5, b, n), stream[15:18])
    assert not np.array_equal(T.batch_indices(1, 0, b, n), T.batch_indices(0, 0, b, n))


def test_train_config_checks_its_values():
    with pytest.raises(ValueError, match=r"batch_size must be >= 1.*ema_decay must be in"):
        T.TrainConfig(batch_size=0, ema_decay=1.5)


def test_resumed_run_ends_with_exactly_the_same_weights(split, tmp_path):
    full, _ = run(split, tmp_path / "full")
    run(split, tmp_path / "part", replace(CFG, steps=3))
    assert [p.name for p in (tmp_path / "part").glob("ckpt_*.pt")] == ["ckpt_000000003.pt"]
    resumed, history = run(split, tmp_path / "part", resume=True)
    assert_same_tensors(full.state_dict(), resumed.state_dict())
    a = T.load_checkpoint(tmp_path / "full" / "ckpt_000000006.pt")
    b = T.load_checkpoint(tmp_path / "part" / "ckpt_000000006.pt")
    for key in ("model", "ema", "optimizer", "rng", "step", "config", "mean", "std"):
        assert_same_tensors(a[key], b[key], key)
    assert [r["step"] for r in history] == [2, 4, 6]
    full_log = T._read_log(tmp_path / "full" / T.LOSS_FILE)
    assert [r["loss"] for r in history] == [r["loss"] for r in full_log]
    # A finished run resumed again trains no further and keeps its weights.
    again, _ = run(split, tmp_path / "part", resume=True)
    assert_same_tensors(full.state_dict(), again.state_dict())


def test_loss_log_summary_and_ema(split, tmp_path):
    model, history = run(split, tmp_path)
    with open(tmp_path / T.LOSS_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(T.LOSS_FIELDS)
    assert [int(r["step"]) for r in rows] == [2, 4, 6] == [r["step"] for r in history]
    assert all(np.isfinite(float(r["loss"])) and float(r["lr"]) == CFG.lr for r in rows)
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds) and seconds[0] >= 0
    summary = json.loads((tmp_path / T.SUMMARY_FILE).read_text())
    assert summary["steps"] == 6 and summary["checkpoint"] == "ckpt_000000006.pt"
    assert summary["config"]["train"]["ema_decay"] == 0.9
    assert (summary["config"]["encoder"], summary["config"]["encoder_key"]) == ("fake", "fake-8")
    log, read_summary = T.read_run(tmp_path)          # what the chapters read back
    assert read_summary == summary and log["step"].tolist() == [2, 4, 6]
    assert log["loss"].tolist() == [r["loss"] for r in history]
    assert log["seconds"][-1] == seconds[-1]
    ckpt = T.load_checkpoint(tmp_path / "ckpt_000000006.pt")
    assert_same_tensors(ckpt["model"], model.state_dict())
    differ = [k for k in ckpt["model"] if not torch.equal(ckpt["model"][k], ckpt["ema"][k])]
    assert differ and ckpt["ema"].keys() == ckpt["model"].keys()
    # load_model rebuilds the model from the checkpoint, with its EMA weights by default.
    ema_model, diffusion, _ = T.load_model(tmp_path / "ckpt_000000006.pt", device="cpu")
    assert_same_tensors(ema_model.state_dict(), ckpt["ema"])
    assert diffusion.T == 50 and not ema_model.training


def test_loop_never_calls_the_encoder_after_precompute(split, tmp_path):
    encoder = FakeEncoder()
    cache = CaptionCache(encoder)
    run(split, tmp_path / "a", cache=cache)
    assert encoder.calls == 1                    # one batched precompute of every caption
    assert sorted(encoder.encoded) == sorted({c.text for it in split.items for c in it.captions})
    run(split, tmp_path / "b", cache=cache)     # everything cached: no call at all
    assert encoder.calls == 1


def test_checkpoints_are_atomic(split, tmp_path, monkeypatch):
    run(split, tmp_path, replace(CFG, steps=3))
    good = (tmp_path / "ckpt_000000003.pt").read_bytes()

    def crash(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        run(split, tmp_path, replace(CFG, steps=6), resume=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_000000003.pt", T.LOSS_FILE,
                                                          T.SUMMARY_FILE]
    assert (tmp_path / "ckpt_000000003.pt").read_bytes() == good
    T.load_checkpoint(tmp_path / "ckpt_000000003.pt")


def test_config_mismatch_and_corrupt_files_are_clear_errors(split, tmp_path):
    run(split, tmp_path / "a", replace(CFG, steps=3))
    path = tmp_path / "a" / "ckpt_000000003.pt"
    bigger = MDM(replace(tiny_model().cfg, latent_dim=32, layers=2))
    with pytest.raises(ValueError, match=r"latent_dim: 16 -> 32.*layers: 1 -> 2"):
        run(split, tmp_path / "b", model=bigger, init_from=path)
    with pytest.raises(ValueError, match="latent_dim: 16 -> 32"):
        run(split, tmp_path / "a", model=bigger, resume=True)
    with pytest.raises(ValueError, match=r"train config.*lr: 0.001 -> 0.01"):
        run(split, tmp_path / "a", replace(CFG, lr=1e-2), resume=True)
    with pytest.raises(ValueError, match="at step 3, beyond the 2 steps"):
        run(split, tmp_path / "a", replace(CFG, steps=2), resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run(split, tmp_path / "a")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{truncated}.*truncated or corrupt"):
        T.load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        T.load_checkpoint(tmp_path / "nope.pt")


def test_finetuning_with_grade_styles(split, tmp_path):
    base, _ = run(split, tmp_path / "base", replace(CFG, steps=3, ema_decay=None))
    pretrained = tmp_path / "base" / "ckpt_000000003.pt"
    grades = {name: 1 + i % 3 for i, name in enumerate(CLIPS)}
    ft_cfg = replace(CFG, steps=2, ema_decay=None, checkpoint_every=10)

    encoder = FakeEncoder()
    textual, _ = run(split, tmp_path / "textual", ft_cfg, model=tiny_model(seed=1),
                     init_from=pretrained, style=STYLES["textual"], grades=grades,
                     cache=CaptionCache(encoder))
    # The same call with resume=True picks up the run instead of restarting from init_from.
    again, _ = run(split, tmp_path / "textual", ft_cfg, model=tiny_model(seed=1),
                   init_from=pretrained, style=STYLES["textual"], grades=grades, resume=True)
    assert_same_tensors(textual.state_dict(), again.state_dict())
    assert "an injured person walks forward" in encoder.encoded
    assert "a very athletic person squats down slowly" in encoder.encoded
    assert not any(c.startswith("a person") for c in encoder.encoded)

    # token: a base checkpoint (n_grades 0) starts a model with a new grade embedding.
    model = tiny_model(n_grades=3, seed=1)
    grade_emb = model.grade_emb.weight.detach().clone()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    run(split, tmp_path / "token0", replace(ft_cfg, steps=0), model=model, style=STYLES["token"],
        grades=grades, init_from=pretrained)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in base.state_dict().items())
    assert torch.equal(loaded["grade_emb.weight"], grade_emb) and init.keys() == loaded.keys()
    run(split, tmp_path / "token", ft_cfg, model=tiny_model(n_grades=3), style=STYLES["token"],
        grades=grades, init_from=pretrained)

    with pytest.raises(ValueError, match="needs grades"):
        run(split, tmp_path / "x", ft_cfg, style=STYLES["numerical"])
    with pytest.raises(ValueError, match=r"no FMS grade for 1 clip.*c4"):
        run(split, tmp_path / "x", ft_cfg, style=STYLES["numerical"],
            grades={k: v for k, v in grades.items() if k != "c4"})
    with pytest.raises(ValueError, match="n_grades=3"):
        run(split, tmp_path / "x", ft_cfg, style=STYLES["token"], grades=grades)
    # Fine-tuning data normalised with other statistics than the pretraining corpus's.
    with pytest.raises(ValueError, match="normalised with another mean"):
        run(dataclasses.replace(split, mean=split.mean + 1), tmp_path / "x", ft_cfg,
            init_from=pretrained)


def test_learning_rate_warms_up_then_follows_the_cosine():
    cfg = T.TrainConfig(lr=1e-3, steps=100, warmup=10, decay="cosine", final_lr=0.1)
    lrs = [T.lr_at(cfg, s) for s in range(1, 101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))            # never rises after warm-up
    assert lrs[-1] == pytest.approx(1e-4)                             # ends at final_lr * lr
    assert T.lr_at(T.TrainConfig(lr=2e-4, steps=50), 37) == 2e-4      # the default: constant
    with pytest.raises(ValueError, match="decay must be"):
        T.TrainConfig(decay="linear")


def test_decaying_run_resumes_exactly_and_refuses_a_new_length(split, tmp_path):
    cfg = replace(CFG, decay="cosine", warmup=2, text_gain_cap=4.0)
    full, history = run(split, tmp_path / "full", cfg)
    assert [r["lr"] for r in history] == [T.lr_at(cfg, r["step"]) for r in history]
    (tmp_path / "full" / "ckpt_000000006.pt").rename(tmp_path / "ckpt6.pt")  # killed after 3
    resumed, _ = run(split, tmp_path / "full", cfg, resume=True)
    assert_same_tensors(full.state_dict(), resumed.state_dict())
    with pytest.raises(ValueError, match="steps: 6 -> 9"):
        run(split, tmp_path / "full", replace(cfg, steps=9), resume=True)


def test_grade_pool_balances_the_grades_and_keeps_every_item():
    grades = [2] * 46 + [1] * 20 + [3] * 34
    pool = T.grade_pool(grades, seed=0)
    counts = np.bincount(np.asarray(grades)[pool], minlength=4)[1:]
    assert counts.tolist() == [46, 46, 46] and set(pool.tolist()) == set(range(100))
    batches = T.StepBatches(0, 0, 30, 10, len(grades), pool)
    drawn = np.asarray(grades)[[i for batch in batches for _, _, i in batch]]
    assert abs(np.mean(drawn == 1) - 1 / 3) < 0.02                 # 300 draws, two epochs


def test_grade_drop_shows_some_items_without_their_grade(split):
    clips = sorted({item.clip for item in split.items})
    grades = {c: 1 + i % 3 for i, c in enumerate(clips)}
    data = MotionDataset(split, max_len=MAX_LEN)
    plain = T.ConditionedItems(data, 0, STYLES["numerical"], grades)
    dropped = T.ConditionedItems(data, 0, STYLES["numerical"], grades, grade_drop=0.5)
    keys = [(step, slot, i) for step in range(20) for slot, i in enumerate(range(len(data)))]
    assert all(plain[k]["grade"] > 0 for k in keys)
    items = [dropped[k] for k in keys]
    share = np.mean([it["grade"] == 0 for it in items])
    assert 0.35 < share < 0.65
    texts = {v: k for k, v in dropped.text_ids.items()}
    assert all(("FMS score" in texts[it["text_id"]]) == (it["grade"] > 0) for it in items)
    # The motion and crop of an item do not depend on whether its grade was dropped.
    assert all(torch.equal(plain[k]["motion"], it["motion"]) for k, it in zip(keys, items))


def test_collate_items_stacks_the_items_and_masks_their_valid_frames(split):
    items = T.ConditionedItems(MotionDataset(split, max_len=MAX_LEN), 0)
    batch = T.collate_items([items[0, 0, 0], items[0, 1, 1]])
    assert batch["motion"].shape == (2, MAX_LEN, 263)
    assert batch["length"].dtype == torch.long and batch["mask"].dtype == torch.bool
    assert batch["mask"].sum(dim=1).tolist() == batch["length"].tolist()
    assert all(batch["mask"][i, :n].all() for i, n in enumerate(batch["length"]))


def test_bf16_runs_the_forward_in_bfloat16_and_keeps_float32_weights(split, tmp_path):
    outputs = {}
    for bf16 in (False, True):
        model = tiny_model()
        model.input_proj.register_forward_hook(
            lambda module, args, out, bf16=bf16: outputs.setdefault(bf16, set()).add(out.dtype))
        _, history = run(split, tmp_path / str(bf16), replace(CFG, steps=2, bf16=bf16),
                         model=model)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert np.isfinite(history[-1]["loss"])
    assert outputs == {False: {torch.float32}, True: {torch.bfloat16}}


def test_compile_routes_the_forward_through_torch_compile(split, tmp_path, monkeypatch):
    compiled = []
    real = torch.compile

    def eager_compile(module, **kwargs):          # dynamo's tracing without inductor's build
        compiled.append(module)
        return real(module, backend="eager")
    monkeypatch.setattr(torch, "compile", eager_compile)
    model, history = run(split, tmp_path / "compiled", replace(CFG, compile=True))
    _, plain = run(split, tmp_path / "plain")
    assert compiled == [model]
    assert [r["loss"] for r in history] == pytest.approx([r["loss"] for r in plain], rel=1e-6)
    # The checkpoint holds the model's own parameter names, not the compiled wrapper's.
    ckpt = T.load_checkpoint(tmp_path / "compiled" / "ckpt_000000006.pt")
    assert ckpt["model"].keys() == model.state_dict().keys()


def test_a_checkpoint_older_than_a_train_setting_resumes_with_its_default(split, tmp_path):
    run(split, tmp_path, replace(CFG, steps=3))
    path = tmp_path / "ckpt_000000003.pt"
    ckpt = T.load_checkpoint(path)
    for key in ("bf16", "compile"):                # written before these switches existed
        del ckpt["config"]["train"][key]
    atomic.torch_save(ckpt, path)
    _, history = run(split, tmp_path, resume=True)
    assert [r["step"] for r in history] == [2, 4, 6]
    with pytest.raises(ValueError, match="bf16: False -> True"):
        run(split, tmp_path, replace(CFG, steps=9, bf16=True), resume=True)


def test_check_device_names_what_is_wrong():
    assert T.check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'gpu7': not a device name"):
        T.check_device("gpu7")
    with pytest.raises(ValueError, match="only cpu and cuda"):
        T.check_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda': this machine has no CUDA GPU"):
            T.check_device("cuda")


def test_condition_layers_learn_at_their_own_rate(split, tmp_path):
    model = tiny_model(n_grades=3)
    groups = T.param_groups(model, 10.0)
    cond = {id(p) for p in groups[1]["params"]}
    named = dict(model.named_parameters())
    assert cond == {id(p) for n, p in named.items()
                    if n.startswith(("text_proj.", "grade_emb."))}
    assert sum(len(g["params"]) for g in groups) == len(named) and groups[1]["lr_scale"] == 10
    assert len(T.param_groups(model, 1.0)) == 1                     # old checkpoints resume
    # A run with scale 1 moves every weight as before; scale 0 freezes the condition's layers.
    start = {k: v.clone() for k, v in model.state_dict().items()}
    frozen, _ = run(split, tmp_path / "frozen", replace(CFG, cond_lr_scale=0.0), model=model)
    for name in ("text_proj.weight", "input_proj.weight"):
        same = torch.equal(frozen.state_dict()[name], start[name])
        assert same == (name == "text_proj.weight"), name
    with pytest.raises(ValueError, match="cond_lr_scale must be >= 0"):
        T.TrainConfig(cond_lr_scale=-1)
