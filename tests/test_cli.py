import numpy as np
import pytest

from conftest import TINY_PROFILE
from fmsnb import stages
from fmsnb.cli import main
from fmsnb.config import load_profile


@pytest.fixture
def run(tiny_repo, monkeypatch):
    monkeypatch.setenv("FMSNB_ROOT", str(tiny_repo))
    return lambda *argv: main([*argv, "--profile", "tiny", "--quiet"])


def test_help_of_every_command_exits_cleanly(capsys):
    for command in ("data", "pretrain", "finetune", "sample", "bench", "device-check"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
    assert "--num-samples" in capsys.readouterr().out


def test_train_then_sample_writes_the_files(run, tiny_repo, capsys):
    assert run("pretrain") == 0
    assert run("pretrain") == 2                              # checkpoints exist: say --resume
    assert "--resume" in capsys.readouterr().err
    assert run("pretrain", "--resume") == 0
    assert run("finetune", "--style", "token") == 0
    out = tiny_repo / "samples"
    assert run("sample", "--style", "token", "--movement", "m01", "--grade", "3",
               "--num-samples", "2", "--out", str(out)) == 0
    joints = np.load(out / "sample01_joints.npy")
    assert joints.shape[1:] == (22, 3) and (out / "sample00.mp4").is_file()
    caption = (out / "caption.txt").read_text()
    assert caption.startswith("a person performs a deep squat")
    assert caption.endswith("\nFMS grade 3\n")        # a token model's caption does not say it
    assert run("sample", "--caption", "a person waves", "--length", "40", "--no-animation",
               "--out", str(tiny_repo / "free")) == 0
    assert np.load(tiny_repo / "free" / "sample00_features.npy").shape == (40, 263)


@pytest.mark.parametrize("argv", [
    ("sample", "--style", "token", "--movement", "m01", "--grade", "4"),
    ("sample", "--style", "fancy", "--movement", "m01", "--grade", "1"),
    ("sample", "--style", "token", "--movement", "m99", "--grade", "1"),
    ("finetune", "--style", "none"),
])
def test_bad_choices_exit_with_2(run, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        run(*argv)
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bad_requests_exit_with_2_and_write_nothing(run, tiny_repo, capsys):
    target = tiny_repo / "never"
    assert run("sample", "--style", "token", "--movement", "m01", "--grade", "2",
               "--length", "500", "--out", str(target)) == 2
    assert "196" in capsys.readouterr().err and not target.exists()
    assert not list(tiny_repo.glob(".never.*"))                # no half-written temporary folder
    assert run("sample", "--style", "token", "--movement", "m01", "--out", str(target)) == 2
    assert "--grade" in capsys.readouterr().err


def test_checkpoint_of_another_configuration_or_corrupt_file(run, tiny_repo, capsys):
    cfg = load_profile("tiny", root=tiny_repo)
    profile = tiny_repo / "params" / "tiny.yml"
    profile.write_text(TINY_PROFILE.replace("latent_dim: 16", "latent_dim: 24"))
    try:
        assert run("pretrain", "--resume") == 2
        assert "latent_dim: 16 -> 24" in capsys.readouterr().err
    finally:
        profile.write_text(TINY_PROFILE)
    ckpt = stages.trained_checkpoint(cfg, "token")
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    assert run("sample", "--style", "token", "--movement", "m02", "--grade", "1") == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_sample_out_never_deletes_a_users_folder(run, tiny_repo, capsys):
    if stages.latest_checkpoint(stages.model_dir(load_profile("tiny", root=tiny_repo),
                                                  stages.BASE)) is None:
        assert run("pretrain") == 0
    users = tiny_repo / "work"
    users.mkdir()
    (users / "thesis.tex").write_text("x")
    assert run("sample", "--caption", "walk", "--length", "20", "--no-animation",
               "--out", str(users)) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert (users / "thesis.tex").read_text() == "x"
    assert run("sample", "--caption", "walk", "--length", "20", "--no-animation",
               "--out", str(users / "thesis.tex")) == 2
    assert "is a file" in capsys.readouterr().err
    assert (users / "thesis.tex").read_text() == "x"
