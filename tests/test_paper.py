"""Tests of fmsnb.paper: its settings are training settings, its tables name our rows."""
from fmsnb import fitness, paper, quantitative
from fmsnb.train import TrainConfig


def test_the_papers_training_settings_are_train_configs():
    assert TrainConfig(**paper.HP1) == TrainConfig(lr=1e-4, batch_size=32, steps=600_000)
    assert TrainConfig(**paper.HP2) == TrainConfig(lr=3e-5, batch_size=8, steps=2_400_000,
                                                   weight_decay=3e-6)
    assert paper.FINETUNE == {**paper.HP2, "steps": 600_000}


def test_the_papers_tables_use_our_row_and_dataset_names():
    assert set(paper.TABLE1) <= {quantitative.GROUND_TRUTH, *quantitative.ROW_LABELS.values()}
    assert set(paper.TABLE1) >= {quantitative.row_label(name) for name in ("base", "numerical")}
    assert set(paper.TABLE2) == {fitness.REAL, "base", "numerical", "textual"}
    assert all(set(row) == set(fitness.METRICS) for row in paper.TABLE2.values())
