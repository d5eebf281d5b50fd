"""Tests of the comparison of two builds' metrics (`fmsnb.publish.compare`)."""
import json

from fmsnb.publish.compare import main


def write(run, name, metrics):
    (run / "metrics").mkdir(parents=True, exist_ok=True)
    (run / "metrics" / f"{name}.json").write_text(json.dumps(metrics))


def test_only_results_count_and_each_difference_is_named(tmp_path, capsys):
    a, b = tmp_path / "a" / "runs" / "default", tmp_path / "b" / "runs" / "default"
    for run, seconds in ((a, 12.5), (b, 99.0)):
        write(run, "t2m", {"rows": {"base": {"R@3": [0.74, 0.01]}}, "seconds": seconds,
                           "depth": float("nan"),
                           "files": [f"{run.resolve()}/samples/x.npy"],
                           "training_speedup": seconds})
    assert main([str(a), str(b)]) == 0       # times, the run's own path and NaN = NaN left out
    assert "equal" in capsys.readouterr().out
    write(b, "t2m", {"rows": {"base": {"R@3": [0.75, 0.01]}}, "seconds": 1.0, "depth": float("nan"),
                     "files": [f"{b.resolve()}/samples/x.npy"], "training_speedup": 1.0})
    write(b, "extra", {"x": 1})
    assert main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "t2m.json: rows.base.R@3.0: 0.74 != 0.75" in out and "extra.json: only in" in out
    assert "2 difference(s)" in out


def test_a_folder_without_metrics_or_with_a_broken_file_exits_2(tmp_path, capsys):
    write(tmp_path / "a", "t2m", {"x": 1})
    (tmp_path / "b").mkdir()
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "no metrics JSON files" in capsys.readouterr().err
    (tmp_path / "b" / "t2m.json").write_text("{")
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "t2m.json: not a JSON file" in capsys.readouterr().err
