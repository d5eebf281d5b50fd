"""Issue 11's hard edges on the command line: kills at chosen points, bad sampling values,
broken real FMS files and checkpoints that are not ones. Every case here is a row of
book/hard_edges.md. The kills run `python -m fmsnb` in a subprocess that pauses at the chosen
point (before the n-th call of a function), where the test sends it the signal."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from fmsnb import stages
from fmsnb.cli import main
from fmsnb.config import load_profile
from fmsnb.standin import actions, fms_recorder

# Run in the subprocess: argv = module, function, n, marker, then the fmsnb arguments. The n-th
# call of module.function first touches `marker` and sleeps, so the signal arrives exactly there.
# A child of a shell without job control (`make test &`) inherits SIGINT ignored; Python then
# leaves it ignored, so the child first takes it back as Ctrl-C.
PAUSED = """
import importlib, pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
module, name, nth, marker = sys.argv[1:5]
owner = importlib.import_module(module)
real, calls = getattr(owner, name), []

def paused(*args, **kwargs):
    calls.append(args)
    if len(calls) == int(nth):
        pathlib.Path(marker).touch()
        time.sleep(60)
    return real(*args, **kwargs)

setattr(owner, name, paused)
from fmsnb.cli import main
sys.exit(main(sys.argv[5:]))
"""
TIMEOUT = 120


def signalled(tmp_path, sig, pause_at: str, nth: int, *argv):
    """Run `python -m fmsnb *argv --profile tiny --quiet`, pause it before the nth call of
    pause_at ("module:function"), send it `sig`; (return code, stderr)."""
    marker = tmp_path / "paused"
    marker.unlink(missing_ok=True)
    module, name = pause_at.split(":")
    proc = subprocess.Popen([sys.executable, "-c", PAUSED, module, name, str(nth), str(marker),
                             *argv, "--profile", "tiny", "--quiet"],
                            cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not marker.exists():
            assert proc.poll() is None, f"ended before the pause: {proc.communicate()[1]}"
            assert time.monotonic() < deadline, "never reached the pause"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, err


@pytest.fixture
def run(tiny_repo, tmp_path, monkeypatch):
    """`main` on the tiny profile, in a fresh run directory per test (also the subprocess's)."""
    monkeypatch.setenv("FMSNB_ROOT", str(tiny_repo))
    monkeypatch.setenv("FMSNB_RUNS", str(tmp_path / "runs"))
    return lambda *argv: main([*argv, "--profile", "tiny", "--quiet"])


def cfg_of(tiny_repo):
    return load_profile("tiny", root=tiny_repo)


# ---------------------------------------------------------------- defect 2: corpora

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_data_run_leaves_no_corpus_folder_and_the_next_one_succeeds(
        run, tiny_repo, tmp_path, sig):
    code, _ = signalled(tmp_path, sig, "fmsnb.standin.fms_recorder:write_capture", 5, "data")
    data = cfg_of(tiny_repo).run_dir / "data"
    assert code == (130 if sig == signal.SIGTERM else -signal.SIGKILL)
    assert (data / "humanml3d_standin" / ".complete").is_file()    # made before the kill
    assert not (data / "fms_raw").exists()                         # either complete or not there
    leftovers = list(data.glob(".fms_raw.*"))
    assert (sig == signal.SIGKILL) == bool(leftovers)              # SIGTERM cleans up on the way out
    assert run("data") == 0
    assert (data / "fms_raw" / ".complete").is_file() and (data / "fms_hml" / "train.txt").is_file()
    assert [p.name for p in data.iterdir() if p.name.startswith(".")] == []   # swept


# ---------------------------------------------------------------- defect 3: bad real FMS files

@pytest.fixture
def real_root(tmp_path, tiny_repo):
    """A data root in the real layout (the tiny profile's stand-ins copied there)."""
    cfg = cfg_of(tiny_repo)
    root = tmp_path / "real"
    actions.write(root / "HumanML3D", cfg.standin.clips_per_action, progress=False)
    fms_recorder.write(root / "FMS", cfg.fms_standin.subjects, cfg.fms_standin.max_episodes,
                       progress=False)
    return root


def test_bad_real_fms_files_are_counted_printed_and_kept_in_the_summary(run, tiny_repo, real_root,
                                                                      capsys):
    front = sorted((real_root / "FMS" / "Skeleton data" / "Front").glob("*.json"))
    for path in front[:2]:
        path.write_text(path.read_text()[:100])                         # truncated
    scores_path = real_root / "FMS" / "experts_score.json"
    scores = json.loads(scores_path.read_text())
    for path in front[2:5]:                                             # ungraded
        _, subject, movement, _, episode = path.stem.split("_")
        del scores[subject][movement][episode]
    scores_path.write_text(json.dumps(scores))
    assert run("data", "--data-root", str(real_root)) == 0
    out = capsys.readouterr().out
    summary = json.loads((cfg_of(tiny_repo).run_dir / "data" / "fms_hml" / "fms_summary.json")
                         .read_text())
    skipped = {os.path.basename(p) for p, _ in summary["skipped"]}
    assert {p.name for p in front[:5]} <= skipped        # with the stand-in's own disputed grades
    assert f"skipped {len(skipped)} FMS inputs" in out
    assert "2 x not a valid JSON file (truncated?)" in out and front[0].name in out
    assert "3 x no expert grade for" in out and front[2].name in out


def test_an_empty_score_file_is_exit_2_saying_how_many_have_no_grade(run, real_root, capsys):
    (real_root / "FMS" / "experts_score.json").write_text("{}")
    assert run("data", "--data-root", str(real_root)) == 2
    err = capsys.readouterr().err
    n = len(list((real_root / "FMS" / "Skeleton data" / "Front").glob("*.json")))
    assert "the FMS dataset is empty" in err and f"{n} x no expert grade for" in err


# ---------------------------------------------------------------- defect 4: sampling values

@pytest.mark.parametrize("argv, message", [
    (("--caption", "walk", "--guidance", "nan"), "--guidance: must be a finite number, got 'nan'"),
    (("--caption", "walk", "--guidance", "inf"), "--guidance: must be a finite number, got 'inf'"),
    (("--caption", "walk", "--length", "0"), "--length: must be a whole number of frames, at "
                                             "least 1, got '0'"),
    (("--caption", "walk", "--length", "ten"), "--length: must be a whole number of frames, at "
                                               "least 1, got 'ten'"),
    (("--caption", "  "), "--caption: must hold some text, got '  '"),
    (("--caption", ""), "--caption: must hold some text, got ''"),
    (("--caption", "walk", "--num-samples", "0"), "--num-samples: must be a whole number, at "
                                                  "least 1, got '0'"),
    (("--caption", "walk", "--steps", "0"), "--steps: must be a whole number, at least 1, got '0'"),
])
def test_invalid_sampling_values_exit_2_with_a_one_line_reason(run, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        run("sample", *argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_sample_help_names_the_movements_and_the_length_range(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "m01 deep squat (heels on the floor)" in help_text
    assert "m15 rotary stability (right arm and left leg up)" in help_text
    assert "from 1 to the model's max_len (196" in help_text


# ---------------------------------------------------------------- defects 7 and 8: training

def test_ctrl_c_during_training_says_where_the_last_checkpoint_is(run, tiny_repo, tmp_path):
    code, err = signalled(tmp_path, signal.SIGINT, "fmsnb.train:train_step", 3, "pretrain")
    models = stages.model_dir(cfg_of(tiny_repo), stages.BASE)
    assert code == 130 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"interrupted: training interrupted: the last checkpoint is {models}/ckpt_000000002.pt; "
        "--resume (resume=True) continues from it"]
    assert run("pretrain", "--resume") == 0


def test_sigterm_during_a_checkpoint_save_leaves_no_temporary_file(run, tiny_repo, tmp_path):
    # only atomic.torch_save calls fsync: the second is ckpt_000000004.pt's, written but not renamed
    code, err = signalled(tmp_path, signal.SIGTERM, "os:fsync", 2, "pretrain")
    models = stages.model_dir(cfg_of(tiny_repo), stages.BASE)
    assert code == 130 and "Traceback" not in err and "ckpt_000000002.pt; --resume" in err
    assert sorted(p.name for p in models.iterdir()) == ["ckpt_000000002.pt", "loss.csv"]
    assert run("pretrain", "--resume") == 0


def test_a_checkpoint_that_is_not_one_is_exit_2_and_names_the_intact_earlier_one(
        run, tiny_repo, capsys):
    assert run("pretrain") == 0                          # ckpt_000000002.pt and ckpt_000000004.pt
    models = stages.model_dir(cfg_of(tiny_repo), stages.BASE)
    junk = models / "ckpt_000000020.pt"
    junk.write_text("hello\n")
    assert run("pretrain", "--resume") == 2
    err = capsys.readouterr().err
    assert f"checkpoint {junk} is truncated or corrupt" in err and "Traceback" not in err
    assert ("the earlier checkpoint ckpt_000000004.pt is intact: move ckpt_000000020.pt out of "
            f"{models} (e.g. rename it to ckpt_000000020.pt.bad) and run again, with --resume "
            "to continue training from ckpt_000000004.pt") in err
    junk.unlink()
    latest = models / "ckpt_000000004.pt"
    latest.write_bytes(latest.read_bytes()[:1000])           # truncated
    assert run("sample", "--caption", "walk", "--length", "20", "--no-animation") == 2
    err = capsys.readouterr().err
    assert f"checkpoint {latest} is truncated or corrupt" in err
    assert "the earlier checkpoint ckpt_000000002.pt is intact" in err
    latest.rename(models / "ckpt_000000004.pt.bad")
    assert run("pretrain", "--resume") == 0                  # continues from step 2


# ---------------------------------------------------------------- defects 8 and 9: sampling

def test_sigterm_during_sample_leaves_no_hidden_folder(run, tmp_path):
    assert run("pretrain") == 0
    out = tmp_path / "walks"
    code, err = signalled(tmp_path, signal.SIGTERM, "fmsnb.sample:save_sample", 2, "sample",
                          "--caption", "walk", "--length", "20", "--num-samples", "2",
                          "--no-animation", "--out", str(out))
    assert code == 130 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".walks.*"))


def test_sample_says_when_the_checkpoint_is_another_model_size(run, tiny_repo, capsys):
    assert run("pretrain") == 0
    profile = tiny_repo / "params" / "tiny.yml"
    text = profile.read_text()
    profile.write_text(text.replace("latent_dim: 16", "latent_dim: 24"))
    try:
        assert run("sample", "--caption", "walk", "--length", "20", "--no-animation") == 0
    finally:
        profile.write_text(text)
    captured = capsys.readouterr()
    assert ("note: the base checkpoint's model is not the profile's (profile -> checkpoint: "
            "latent_dim: 24 -> 16); sampling with the checkpoint's") in captured.err
    assert "from the base model (latent_dim 16, layers 1)" in captured.out
