"""The numbers the paper publishes, typed from it: shown beside ours for comparison, never computed.

`TABLE1` is its Table 1 (T2M metrics on the HumanML3D test set, by row label as
`table1.ROW_LABELS` names the rows), `TABLE2` its Table 2 (grade classification, as
fractions, by dataset as `grading` names them), and `HP1`, `HP2`, `FINETUNE` its training
settings (supplementary material, "Training setup") as `config.TrainConfig` fields; the profiles
keep the optimiser and scale `steps` down. Plain data, so that anything may import it.
"""

TABLE1 = {
    "Ground truth": {"R@3": 0.798, "FID": 0.002, "MM-Dist": 2.976, "Diversity": 9.507},
    "Base MDM": {"R@3": 0.611, "FID": 0.544, "MM-Dist": 5.566, "Diversity": 9.560,
                 "MModality": 2.799},
    "Fine-tuned MDM (numerical)": {"R@3": 0.614, "FID": 0.949, "MM-Dist": 5.448,
                                   "Diversity": 9.537, "MModality": 3.403},
}

# Table 2 (REFERENCE section 6). Its rows read "Precision F1" and "Recall F1"; it has neither a
# token model nor the real-trained protocol.
TABLE2 = {
    "real": {"accuracy": 0.84, "precision": 0.81, "recall": 0.74, "macro_f1": 0.77,
             "micro_f1": 0.84},
    "base": {"accuracy": 0.39, "precision": 0.41, "recall": 0.39, "macro_f1": 0.36,
             "micro_f1": 0.39},
    "numerical": {"accuracy": 0.61, "precision": 0.62, "recall": 0.61, "macro_f1": 0.61,
                  "micro_f1": 0.62},
    "textual": {"accuracy": 0.75, "precision": 0.76, "recall": 0.75, "macro_f1": 0.75,
                "micro_f1": 0.75},
}

HP1 = {"lr": 1e-4, "batch_size": 32, "steps": 600_000, "weight_decay": 0.0}
HP2 = {"lr": 3e-5, "batch_size": 8, "steps": 2_400_000, "weight_decay": 3e-6}
FINETUNE = {**HP2, "steps": 600_000}     # from the HP2 checkpoint, on FMS only
