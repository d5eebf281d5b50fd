"""Tests of importing MDM's released model (issue 12, section 3): a state dict written in MDM's
names and shapes (random weights, a narrow model) gives our model MDM's forward pass exactly;
every setting and shape that does not fit is an error saying what; the command line fine-tunes
from it with --init-from mdm:PATH, and a profile naming it (`mdm_release`) makes it the base."""
import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from fmsnb import mdm_release as R, stages, table1
from fmsnb.cli import main
from fmsnb.config import load_profile
from fmsnb.diffusion import DiffusionConfig
from fmsnb.mdm import MDM, MDMConfig
from fmsnb.publish import book
from fmsnb.text import CaptionCache, side_features
from fmsnb.train import load_checkpoint, load_model
from test_train import FakeEncoder

torch.set_num_threads(1)

D, LAYERS = 16, 2
ARGS = {"arch": "trans_enc", "dataset": "humanml", "latent_dim": D, "layers": LAYERS,
        "cond_mask_prob": 0.1, "diffusion_steps": 1000, "noise_schedule": "cosine",
        "sigma_small": True, "unconstrained": False, "emb_trans_dec": False, "lr": 1e-4}
CFG = MDMConfig(latent_dim=D, layers=LAYERS, heads=4, ff_size=1024, text_dim=512,
                mask_padding=False)


def sinusoid_table(rows: int, d: int) -> torch.Tensor:
    """(rows, 1, d): sin on even columns, cos on odd ones, as MDM's PositionalEncoding stores."""
    position = np.arange(rows)[:, None]
    angle = position * np.exp(np.arange(0, d, 2) * (-math.log(10000.0) / d))
    table = np.zeros((rows, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return torch.tensor(table, dtype=torch.float32)[:, None]


class Released(nn.Module):
    """MDM's HumanML3D denoiser laid out as its release is: its module names (so its state dict
    has the release's keys, the positional table under both of its owners), a sequence-first
    transformer, motions as (B, 263, 1, T). The reference the imported model must equal."""

    def __init__(self, d=D, layers=LAYERS, feats=263):
        super().__init__()
        self.input_process = nn.Module()
        self.input_process.poseEmbedding = nn.Linear(feats, d)
        self.sequence_pos_encoder = nn.Module()
        self.sequence_pos_encoder.register_buffer("pe", sinusoid_table(5000, d))
        self.embed_timestep = nn.Module()
        self.embed_timestep.sequence_pos_encoder = self.sequence_pos_encoder
        self.embed_timestep.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.embed_text = nn.Linear(512, d)
        self.seqTransEncoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, 4, 1024, 0.1, "gelu"), layers, enable_nested_tensor=False)
        self.output_process = nn.Module()
        self.output_process.poseFinal = nn.Linear(d, feats)
        with torch.no_grad():                  # not PyTorch's initialisation: every weight counts
            for p in self.parameters():
                p.normal_(0.0, 0.3)

    def forward(self, x, t, text, uncond=False):
        B, J, F, T = x.shape
        pe = self.sequence_pos_encoder.pe
        emb = self.embed_timestep.time_embed(pe[t]).permute(1, 0, 2)            # (1, B, d)
        emb = emb + self.embed_text(torch.zeros_like(text) if uncond else text)
        frames = self.input_process.poseEmbedding(x.permute(3, 0, 1, 2).reshape(T, B, J * F))
        out = self.seqTransEncoder(torch.cat([emb, frames]) + pe[:T + 1])[1:]   # (T, B, d)
        return self.output_process.poseFinal(out).reshape(T, B, J, F).permute(1, 2, 3, 0)


def write_release(folder, reference=None, args=ARGS, state=None):
    """model000200000.pt (the reference's state dict with a frozen-CLIP entry) + args.json."""
    folder.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = {**reference.state_dict(), "clip_model.positional_embedding": torch.zeros(77, 8)}
    torch.save(state, folder / "model000200000.pt")
    (folder / "args.json").write_text(json.dumps(args))
    return folder / "model000200000.pt"


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return Released().eval()


def both(model, reference, text, clip_text=None, uncond=False):
    """Our model's and the reference's x0 (B, T, 263) for the same noisy motion and steps."""
    torch.manual_seed(1)
    x, t = torch.randn(3, 50, 263), torch.tensor([0, 417, 999])
    mask = torch.ones(3, 50, dtype=torch.bool)
    with torch.no_grad():
        ours = model(x, t, text, mask, drop=torch.full((3,), uncond))
        theirs = reference(x.permute(0, 2, 1)[:, :, None], t,
                           text if clip_text is None else clip_text, uncond)
    return ours, theirs.squeeze(2).permute(0, 2, 1)


def test_the_imported_model_computes_mdms_forward_pass(tmp_path, reference):
    weights, args = R.load_release(write_release(tmp_path, reference), CFG, DiffusionConfig())
    assert args["latent_dim"] == D and not any(k.startswith("clip") for k in weights)
    model = MDM(CFG)
    model.load_state_dict(weights)                          # strict: every parameter is MDM's
    model.eval()
    text = torch.randn(3, 512)
    for uncond in (False, True):                            # conditional and null condition
        ours, theirs = both(model, reference, text, uncond=uncond)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert torch.equal(model.text_gain, torch.eye(512))


def test_side_words_start_silent(tmp_path, reference):
    # ours, not MDM's: SideWords appends 4 side features; their columns import as zeros
    cfg = MDMConfig(**{**CFG.__dict__, "text_dim": 516})
    weights, _ = R.load_release(write_release(tmp_path, reference), cfg, DiffusionConfig())
    assert not weights["text_proj.weight"][:, 512:].any()
    model = MDM(cfg)
    model.load_state_dict(weights)
    model.eval()
    clip = torch.randn(3, 512)
    sides = torch.stack([side_features(c) for c in
                         ("raise the left arm", "right leg and left arm", "squat")])
    ours, theirs = both(model, reference, torch.cat([clip, sides], 1), clip_text=clip)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("change, message", [
    ({"arch": "trans_dec"}, "arch is 'trans_dec', not 'trans_enc'"),
    ({"dataset": "kit"}, "dataset is 'kit', not 'humanml'"),
    ({"text_encoder_type": "bert"}, "text_encoder_type is 'bert'"),
    ({"layers": 3}, "layers is 3 but the profile's model.layers is 2"),
    ({"cond_mask_prob": 0.0}, "cond_mask_prob is 0.0 but the profile's model.cond_drop_prob"),
    ({"mask_frames": True}, "mask_frames is True but the profile's model.mask_padding is False"),
    ({"diffusion_steps": 50}, "diffusion_steps is 50 but the profile's diffusion.steps is 1000"),
])
def test_args_that_do_not_fit_the_profile_are_named(tmp_path, reference, change, message):
    path = write_release(tmp_path, reference, {**ARGS, **change})
    with pytest.raises(ValueError, match="args.json: MDM's release does not fit") as err:
        R.load_release(path, CFG, DiffusionConfig())
    assert message in str(err.value)


def test_fixed_choices_and_text_width_are_checked_against_the_profile():
    problems = R.settings_problems(ARGS, MDMConfig(latent_dim=D, layers=LAYERS, heads=2,
                                                   ff_size=64, patch=4, text_dim=384),
                                   DiffusionConfig())
    text = " | ".join(problems)
    assert "heads (fixed by MDM) is 4 but the profile's model.heads is 2" in text
    assert "ff_size (fixed by MDM) is 1024" in text and "patch (fixed by MDM) is 1" in text
    assert "gives 384-d (text.encoder: clip)" in text
    assert "mask_frames is False but the profile's model.mask_padding is True" in text


def test_state_dicts_that_do_not_fit_are_named(tmp_path, reference):
    state = dict(reference.state_dict())
    kit = {**state, "input_process.poseEmbedding.weight": torch.zeros(D, 251)}
    with pytest.raises(ValueError, match=r"input_proj.weight: \(16, 251\), the model's is "
                                         r"\(16, 263\)"):
        R.import_weights(kit, CFG)
    with pytest.raises(ValueError, match="not the sinusoidal table"):
        R.import_weights({**state, "sequence_pos_encoder.pe": torch.zeros(5000, 1, D)}, CFG)
    with pytest.raises(ValueError, match="does not have: \\['embed_action.action_embedding'\\]"):
        R.import_weights({**state, "embed_action.action_embedding": torch.zeros(1, D)}, CFG)
    short = {k: v for k, v in state.items() if not k.startswith("seqTransEncoder.layers.1.")}
    with pytest.raises(ValueError, match="encoder.layers.1.linear1.weight missing"):
        R.import_weights(short, CFG)
    # a file that holds {"model": state dict} (later releases) reads as the state dict
    nested = write_release(tmp_path / "nested", state={"model": state})
    assert R.load_release(nested, CFG, DiffusionConfig())[0].keys() == MDM(CFG).state_dict().keys()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "args.json").write_text(json.dumps(ARGS))
    (tmp_path / "junk" / "model000200000.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not readable as a torch state dict"):
        R.load_release(tmp_path / "junk" / "model000200000.pt", CFG, DiffusionConfig())
    (tmp_path / "lonely").mkdir()
    torch.save(state, tmp_path / "lonely" / "model.pt")
    with pytest.raises(FileNotFoundError, match="args.json not found"):
        R.load_release(tmp_path / "lonely" / "model.pt", CFG, DiffusionConfig())


class FakeClip(FakeEncoder):
    """The caption features of CLIP's width under CLIP's name (CLIP's weights are not here)."""
    name, key, dim = "clip", "fake-clip-512", 512


PROFILE = """name: mdmtiny
standin: {clips_per_action: 1}
fms_standin: {subjects: 3, max_episodes: 1}
fms: {views: [front], mirror: false}
text: {encoder: clip}
model: {latent_dim: 16, layers: 2, heads: 4, ff_size: 1024, mask_padding: false}
finetune: {steps: 2, batch_size: 4, checkpoint_every: 2, log_every: 1}
styles: [token]
"""


def test_finetune_starts_from_the_release_on_the_command_line(tmp_path, reference, monkeypatch,
                                                               capsys):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "mdmtiny.yml").write_text(PROFILE)
    monkeypatch.setenv("FMSNB_ROOT", str(tmp_path))
    monkeypatch.delenv("FMSNB_RUNS", raising=False)
    monkeypatch.setattr(stages, "text_cache", lambda cfg: CaptionCache(FakeClip()))
    release = write_release(tmp_path / "humanml_trans_enc_512", reference)
    finetune = ["finetune", "--style", "token", "--profile", "mdmtiny", "--quiet"]
    assert main([*finetune, "--init-from", f"mdm:{tmp_path / 'nowhere' / 'model.pt'}"]) == 2
    assert "MDM release not found" in capsys.readouterr().err
    assert main(finetune) == 2                       # no base model of its own, no --init-from
    assert "pretrain" in capsys.readouterr().err

    assert main([*finetune, "--init-from", f"mdm:{release}"]) == 0
    imported = tmp_path / "runs" / "mdmtiny" / "models" / "mdm" / "ckpt_000200000.pt"
    model, _, ckpt = load_model(imported, device="cpu")
    assert ckpt["config"]["init_from"] == f"mdm:{release}" and ckpt["config"]["mdm_args"] == ARGS
    ours, theirs = both(model, reference, torch.randn(3, 512))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    tuned = load_checkpoint(stages.trained_checkpoint(load_profile("mdmtiny"), "token"))
    assert tuned["config"]["init_from"] == str(imported) and tuned["step"] == 2
    assert tuned["config"]["model"]["n_grades"] == 3             # the token style grew its grade
    np.testing.assert_array_equal(tuned["std"].numpy(), ckpt["std"].numpy())   # HumanML3D's


def test_a_profile_naming_the_release_makes_it_the_runs_base(tmp_path, reference, monkeypatch):
    release = write_release(tmp_path / "humanml_trans_enc_512", reference)
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "mdmbase.yml").write_text(
        PROFILE.replace("mdmtiny", "mdmbase") + f"mdm_release: {release}\n")
    monkeypatch.setenv("FMSNB_ROOT", str(tmp_path))
    monkeypatch.delenv("FMSNB_RUNS", raising=False)
    monkeypatch.setattr(stages, "text_cache", lambda cfg: CaptionCache(FakeClip()))
    cfg = load_profile("mdmbase")
    assert book.missing_data(cfg) == []              # the release and its args.json are there
    with pytest.raises(FileNotFoundError, match="pretrain"):
        stages.trained_checkpoint(cfg, stages.BASE)  # nothing pretrained in this run ...
    assert stages.finetune(cfg, "token", progress=False)[-1]["step"] == 2    # ... not needed
    imported = tmp_path / "runs" / "mdmbase" / "models" / "mdm" / "ckpt_000200000.pt"
    tuned = load_checkpoint(stages.trained_checkpoint(cfg, "token"))
    assert tuned["config"]["init_from"] == str(imported)
    assert stages.base_checkpoint(cfg) == imported
    assert f"`{release}`" in stages.describe_base(cfg)
    written = imported.stat().st_mtime_ns
    assert stages.base_checkpoint(cfg) == imported and imported.stat().st_mtime_ns == written
    os.utime(release, ns=(written + 10**9, written + 10**9))    # a newer release: imported again
    assert stages.base_checkpoint(cfg) == imported and imported.stat().st_mtime_ns > written

    base = stages.load_generator(cfg, stages.BASE)   # Table 1's Base MDM row samples MDM's model
    ours, theirs = both(base.model, reference, torch.randn(3, 512))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert table1.trained_steps(cfg) == {"base": 200000, "token": 2}

    (tmp_path / "params" / "nofile.yml").write_text(
        PROFILE.replace("mdmtiny", "nofile") + "mdm_release: mdm/model000200000.pt\n")
    relative = load_profile("nofile", str(tmp_path / "data"))
    lacking = book.missing_data(relative)
    assert f"{tmp_path / 'data' / 'mdm' / 'model000200000.pt'}: missing (mdm_release" in \
        " ".join(lacking) and any("mdm/args.json: missing" in line for line in lacking)
    with pytest.raises(ValueError, match="mdm_release 'mdm/model000200000.pt' is relative"):
        stages.base_checkpoint(load_profile("nofile"))
