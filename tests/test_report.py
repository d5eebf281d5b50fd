import json
import time

import numpy as np

from fmsnb import report
from fmsnb.config import load_profile


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
