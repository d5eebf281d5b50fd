"""Training on several processes (issue 12, section 4) on this CPU with the gloo backend.

Two processes, each given the environment torchrun gives (RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT), train with per-rank batch B/2 and log the same losses, to rounding,
as one process with batch B, and end with the same weights and EMA; the rank other than 0
writes nothing; a run killed mid-way resumes with two processes or with one; a number of
processes that does not divide the batch is an error saying which would. The model has no
dropout: its masks are drawn per rank (`train._own_dropout`), so with dropout the two runs are
alike in distribution only. One test starts the command line under torchrun itself.
"""
import builtins
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from conftest import REPO, TINY_PROFILE
from fmsnb import atomic, distributed
from fmsnb import train as T
from fmsnb.captions import STYLES
from fmsnb.cli import main
from fmsnb.dataset import MotionDataset, read_split
from fmsnb.mdm import MDM, MDMConfig
from fmsnb.text import CaptionCache
from test_train import CLIPS, MAX_LEN, TEXT_DIM, FakeEncoder, tiny_diffusion, tiny_split

torch.set_num_threads(1)

# The token style with balanced grades and an EMA: every per-sample input a rank slices.
CFG = T.TrainConfig(lr=1e-3, batch_size=4, steps=6, checkpoint_every=3, log_every=2,
                    ema_decay=0.9, seed=3, balance_grades=True)
GRADES = {name: 1 + i % 3 for i, name in enumerate(CLIPS)}
LAST = "ckpt_000000006.pt"


def run(corpus, run_dir, resume=False):
    """Train the tiny token model (no dropout) on the corpus; (model, loss rows)."""
    torch.manual_seed(0)
    model = MDM(MDMConfig(latent_dim=16, layers=1, heads=2, ff_size=32, text_dim=TEXT_DIM,
                          max_len=MAX_LEN, n_grades=3, dropout=0.0))
    data = MotionDataset(read_split(corpus, "train", progress=False), max_len=MAX_LEN)
    rows = T.train(model, tiny_diffusion(), data, CaptionCache(FakeEncoder()), CFG, run_dir,
                   resume=resume, style=STYLES["token"], grades=GRADES, device="cpu",
                   progress=False)
    return model, rows


def _no_writes_under(folder) -> None:
    """Make every way the loop writes a file (atomic writes, open for writing, mkdir) fail for
    paths under `folder`, in this process."""
    real_open, real_write, real_mkdir = builtins.open, atomic.write, pathlib.Path.mkdir

    def refuse(path):
        if str(path).startswith(str(folder)):
            raise AssertionError(f"rank {os.environ['RANK']} wrote {path}")

    def guarded_open(path, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            refuse(path)
        return real_open(path, mode, *args, **kwargs)

    def guarded_write(path, *args, **kwargs):
        refuse(path)
        return real_write(path, *args, **kwargs)

    def guarded_mkdir(self, *args, **kwargs):
        refuse(self)
        return real_mkdir(self, *args, **kwargs)

    builtins.open, atomic.write, pathlib.Path.mkdir = guarded_open, guarded_write, guarded_mkdir


def _worker(rank, world, port, corpus, run_dir, resume, die_at):
    """One rank, started as torchrun starts it; rank 1 dies (os._exit) at step `die_at`."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.start("cpu")
    try:
        if rank > 0:
            _no_writes_under(run_dir)
        if rank == 1 and die_at:
            real_step, calls = T.train_step, []

            def dying_step(*args, **kwargs):
                calls.append(1)
                if len(calls) == die_at:
                    os._exit(1)
                return real_step(*args, **kwargs)
            T.train_step = dying_step
        run(corpus, run_dir, resume)
    finally:
        distributed.stop()


def spawn(world, corpus, run_dir, resume=False, die_at=0):
    with socket.socket() as s:                  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(world, port, str(corpus), str(run_dir), resume, die_at),
             nprocs=world)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    tiny_split(root)
    return root


@pytest.fixture(scope="module")
def one(corpus, tmp_path_factory):
    """The 1-process run with batch B: its folder."""
    run_dir = tmp_path_factory.mktemp("one")
    run(corpus, run_dir)
    return run_dir


def assert_same_run(run_dir, reference):
    """The loss log and the final weights and EMA of run_dir equal reference's, to rounding.
    Weights to a tenth of one step's learning rate (1e-3): Adam divides a gradient by its own
    size, so a gradient near zero, whose sign is rounding, moves a weight by up to lr."""
    got, want = (T._read_log(d / T.LOSS_FILE) for d in (run_dir, reference))
    assert [r["step"] for r in got] == [2, 4, 6] == [r["step"] for r in want]
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in want], rel=1e-5)
    a, b = (T.load_checkpoint(d / LAST) for d in (run_dir, reference))
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=1e-4, atol=1e-4)


def test_two_processes_with_half_batches_train_as_one_with_the_whole(corpus, one, tmp_path):
    spawn(2, corpus, tmp_path / "two")
    assert_same_run(tmp_path / "two", one)
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert files == ["ckpt_000000003.pt", LAST, T.LOSS_FILE, T.SUMMARY_FILE]
    summary = (tmp_path / "two" / T.SUMMARY_FILE).read_text()
    assert '"processes": 2' in summary
    # The losses are not alike by accident: they move from row to row.
    losses = [r["loss"] for r in T._read_log(one / T.LOSS_FILE)]
    assert len(set(losses)) == 3


def test_a_killed_two_process_run_resumes_with_two_processes_or_one(corpus, one, tmp_path):
    killed = tmp_path / "killed"
    with pytest.raises(ProcessException):     # rank 1 exited, or rank 0 lost it
        spawn(2, corpus, killed, die_at=5)        # rank 1 dies at step 5: after checkpoint 3
    assert sorted(p.name for p in killed.glob("ckpt_*.pt")) == ["ckpt_000000003.pt"]
    assert [r["step"] for r in T._read_log(killed / T.LOSS_FILE)] == [2, 4]
    shutil.copytree(killed, tmp_path / "alone")
    spawn(2, corpus, killed, resume=True)
    assert_same_run(killed, one)
    run(corpus, tmp_path / "alone", resume=True)             # one process, the same checkpoint
    assert_same_run(tmp_path / "alone", one)


def test_a_number_of_processes_that_does_not_divide_the_batch_is_a_clear_error(
        corpus, tmp_path, monkeypatch):
    assert [distributed.share(8, distributed.Group(r, 4)) for r in range(4)] == [
        slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    with pytest.raises(ValueError, match=r"batch_size 4 does not split evenly over 3 "
                                         r"processes \(WORLD_SIZE\).*\(2, 4\)"):
        distributed.share(4, distributed.Group(0, 3))
    # train asks before anything is read or written.
    monkeypatch.setattr(distributed, "current", lambda: distributed.Group(0, 3))
    with pytest.raises(ValueError, match="does not split evenly over 3"):
        run(corpus, tmp_path / "three")
    assert not (tmp_path / "three").exists()


def test_only_the_training_commands_run_under_torchrun(tiny_repo, monkeypatch, capsys):
    monkeypatch.setenv("FMSNB_ROOT", str(tiny_repo))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["sample", "--caption", "a person waves", "--profile", "tiny"]) == 2
    assert "only pretrain and finetune run on several processes" in capsys.readouterr().err


def test_pretrain_under_torchrun_logs_what_one_process_logs(tmp_path):
    """`torchrun --nproc_per_node 2 -m fmsnb pretrain` against `python -m fmsnb pretrain`, on
    the tiny profile without dropout."""
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "tiny.yml").write_text(
        TINY_PROFILE.replace("model: {latent_dim: 16,", "model: {dropout: 0.0, latent_dim: 16,"))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2"]
    env = {**os.environ, "FMSNB_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    outs = {}
    for name, launcher in (("one", []), ("two", torchrun)):
        done = subprocess.run([*(launcher or [sys.executable]), "-m", "fmsnb", "pretrain",
                               "--profile", "tiny", "--quiet", "--device", "cpu"], cwd=REPO,
                              env={**env, "FMSNB_RUNS": str(tmp_path / name)},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        outs[name] = done.stdout
    assert outs["two"].count("base model: step 4") == 1         # rank 0 alone prints
    logs = [T._read_log(tmp_path / name / "tiny" / "models" / "base" / T.LOSS_FILE)
            for name in ("one", "two")]
    assert [r["step"] for r in logs[0]] == [2, 4] == [r["step"] for r in logs[1]]
    assert [r["loss"] for r in logs[1]] == pytest.approx([r["loss"] for r in logs[0]],
                                                         rel=1e-5)
