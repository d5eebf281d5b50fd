"""Tests of fmsnb.paper: its settings are training settings, its tables name our rows."""
from fmsnb import grading, paper, t2m_protocol, table1
from fmsnb.train import TrainConfig


def test_the_papers_training_settings_are_train_configs():
    assert TrainConfig(**paper.HP1) == TrainConfig(lr=1e-4, batch_size=32, steps=600_000)
    assert TrainConfig(**paper.HP2) == TrainConfig(lr=3e-5, batch_size=8, steps=2_400_000,
                                                   weight_decay=3e-6)
    assert paper.FINETUNE == {**paper.HP2, "steps": 600_000}


def test_the_papers_tables_use_our_row_and_dataset_names():
    assert set(paper.TABLE1) <= {t2m_protocol.GROUND_TRUTH, *table1.ROW_LABELS.values()}
    assert set(paper.TABLE1) >= {table1.row_label(name) for name in ("base", "numerical")}
    assert all(set(row) <= set(t2m_protocol.METRICS) for row in paper.TABLE1.values())
    assert set(paper.TABLE2) == {grading.REAL, "base", "numerical", "textual"}
    assert all(set(row) == set(grading.METRICS) for row in paper.TABLE2.values())
