import json
import subprocess
import time

import numpy as np
import pytest

from fmsnb.config import load_profile
from fmsnb.publish import report


def test_metrics_round_trip_with_numpy_values(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "x.yml").write_text("name: x\n")
    cfg = load_profile("x", root=tmp_path)
    path = report.write_metrics(cfg, "demo", {"acc": np.float32(0.5), "cm": np.eye(2),
                                              "pair": (1, 2)})
    assert json.loads(path.read_text()) == {"acc": 0.5, "cm": [[1.0, 0.0], [0.0, 1.0]],
                                            "pair": [1, 2]}
    assert report.read_metrics(cfg, "demo")["acc"] == 0.5
    assert not list(path.parent.glob("*.tmp"))


def test_footer_names_profile_data_commit_and_time():
    cfg = load_profile("smoke")
    text = report.footer(cfg, time.time() - 3)
    for part in ("`smoke`", "stand-in", "git commit", "wall time: 3 s", "device"):
        assert part in text


def test_a_published_run_is_read_back_with_its_build(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "x.yml").write_text("name: x\n")
    cfg = load_profile("x", root=tmp_path)
    assert report.published(tmp_path, "x") is None
    with pytest.raises(FileNotFoundError, match="no metrics"):
        report.publish(cfg, {})
    report.write_metrics(cfg, "classification", {"aims": [1, 2]})
    folder = report.publish(cfg, {"03_pretraining": 60.0, "04_finetuning": 90.5})
    assert folder == tmp_path / "book" / "results" / "x"
    run = report.published(tmp_path, "x")
    assert run["classification"] == {"aims": [1, 2]}
    assert run["build"]["total_seconds"] == 150.5 and run["build"]["profile"] == "x"
    assert {"commit", "date", "device", "data"} <= set(run["build"])
    assert "in 3 minutes" in report.published_note(run, "x")
    assert "no published run" in report.published_note(None, "x")
    assert "itself built with the `x` profile" in report.published_note(None, "x", page="x")
    assert report.published(tmp_path, "x", page="x") is None         # not beside itself
    assert run["figures"] == {}                       # the run drew none of PUBLISHED_FIGURES


def test_a_published_run_carries_its_figures(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "x.yml").write_text("name: x\n")
    cfg = load_profile("x", root=tmp_path)
    report.write_metrics(cfg, "finetuning", {})
    drawn = cfg.run_dir / "figures" / report.PUBLISHED_FIGURES[0]
    drawn.parent.mkdir(parents=True)
    drawn.write_bytes(b"\x89PNG picture")
    (cfg.run_dir / "figures" / "other.png").write_bytes(b"not published")
    report.publish(cfg, {})
    run = report.published(tmp_path, "x")
    assert list(run["figures"]) == [report.PUBLISHED_FIGURES[0]]
    assert run["figures"][report.PUBLISHED_FIGURES[0]].read_bytes() == b"\x89PNG picture"
    assert not (tmp_path / "book" / "results" / "x" / "figures" / "other.png").exists()


def test_a_run_published_from_a_clean_checkout_names_its_commit_alone(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "x.yml").write_text("name: x\n")
    cfg = load_profile("x", root=tmp_path)
    report.write_metrics(cfg, "t2m", {"rows": {}})
    (tmp_path / "book" / "results" / "x").mkdir(parents=True)
    (tmp_path / "book" / "results" / "x" / "t2m.json").write_text("{}")    # an earlier run's
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    for args in (["init", "-q"], ["add", "params", "book"], ["commit", "-qm", "x"]):
        subprocess.run(git + args, check=True)
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], check=True, text=True,
                          capture_output=True).stdout.strip()
    report.publish(cfg, {})
    assert report.published(tmp_path, "x")["build"]["commit"] == head
