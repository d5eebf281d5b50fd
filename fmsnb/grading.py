"""Grading generated motions: the classification datasets and protocols (paper 4.5, and more).

The paper checks that generated motions carry their requested FMS grade by training its LSTM
grade classifier (`fmsnb.classifier`) inside each dataset, real or generated, and reporting how
well it recovers the grades of that dataset's held-out part (its Table 2). That protocol only
asks whether a generated set's grades are separable among themselves. A second protocol, which
the paper lacks, trains the classifier on real clips only and scores every generated motion: a
motion requested at grade 3 must then look like a real grade 3. This module builds the
datasets with their protocol-1 splits (`GradedSet`: real clips split by subject, all views and
mirrored copies of a subject on the same side; generated sets split at random, stratified by
the requested grade), runs both protocols, checks the project's aims and lays the results out
as tables (the chapter's findings are worded from them by `fmsnb.publish.prose`). A random
forest on per-clip summary statistics (`forest_baseline`) is the yardstick that tells whether
the LSTM or the data limits a score, and a second forest trained on the same real clips names
their movement (`movement_recognition`): a grade only means something on the movement that was
requested.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import binom
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import confusion_matrix

from fmsnb import corpora, stages
from fmsnb.align import META_FILE, SPLITS, read_fms_meta
from fmsnb.classifier import (GradeClassifier, classification_report, row_shares,
                              train_classifier)
from fmsnb.config import ClassifierConfig, Profile
from fmsnb.dataset import read_split
from fmsnb.fms import GRADES, MOVEMENTS
from fmsnb.humanml3d import recover_joints
from fmsnb.paper import TABLE2

REAL = "real"
CHANCE = 1 / len(GRADES)
# Held-out share of a generated set in protocol 1; the real corpus holds out its val and test
# subjects (15% + 15% of subjects), so both kinds of dataset hold out about 30%.
GENERATED_TEST_FRACTION = 0.3
PROTOCOLS = {
    "within": "trained and tested inside each dataset (the paper's protocol)",
    "real_trained": "trained on the real train subjects, scoring every generated motion",
}
METRICS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
           "macro_f1": "Macro F1", "micro_f1": "Micro F1"}
MOVEMENT = "movement"       # the movement-recognition measure, checked beside the PROTOCOLS
FINE_TUNED = "fine-tuned"   # in an aim's datasets: every fine-tuned set of the run


@dataclass(frozen=True)
class Aim:
    """One of the project's targets: the accuracy of `measure` (a key of PROTOCOLS, or MOVEMENT)
    on each of `datasets` (names; FINE_TUNED stands for every fine-tuned set) is at least
    `at_least` or at most `at_most`."""
    label: str
    measure: str
    datasets: tuple[str, ...]
    at_least: float | None = None
    at_most: float | None = None

    def concerns(self, name: str) -> bool:
        """Whether the aim is set for dataset `name` (a grade-guided "<style>+gg" set is held
        to its style's aims)."""
        return name.removesuffix(stages.GUIDED) in self.datasets or (
            FINE_TUNED in self.datasets and name not in (REAL, stages.BASE))

    def reached(self, accuracy: float) -> bool:
        """Whether `accuracy` meets the target."""
        return ((self.at_least is None or accuracy >= self.at_least)
                and (self.at_most is None or accuracy <= self.at_most))

    def target(self) -> str:
        """The target as the aims table writes it, e.g. '>= 0.85'."""
        return f">= {self.at_least}" if self.at_least is not None else f"<= {self.at_most}"


# The project's aims for the default profile. The paper found the numerical style weaker than
# the textual one, hence its lower bar under the real-trained classifier.
AIMS = (
    Aim("LSTM on the held-out real subjects", "within", (REAL,), at_least=0.85),
    Aim("base set near chance", "within", (stages.BASE,), at_most=0.45),
    Aim("fine-tuned set, paper's protocol", "within", (FINE_TUNED,), at_least=0.7),
    Aim("fine-tuned set, real-trained LSTM", "real_trained", ("textual", "token"), at_least=0.6),
    Aim("numerical set, real-trained LSTM", "real_trained", ("numerical",), at_least=0.5),
    Aim("movement named, held-out real subjects", MOVEMENT, (REAL,), at_least=0.95),
    Aim("requested movement named, fine-tuned set", MOVEMENT, (FINE_TUNED,), at_least=0.8),
)


@dataclass
class GradedSet:
    """Motions with FMS grades and the protocol-1 split: `features` (T_i, 263) de-normalised
    HumanML3D features, `grades` (N,) in 1..3 (the experts' for real clips, the requested one
    for generated motions), `movements` (N,) codes, `test` (N,) bool marking the held-out part;
    `subjects` (N,) for real clips (None for generated ones) and the clips left out (path,
    reason) in `skipped`."""
    name: str
    features: list[np.ndarray]
    grades: np.ndarray
    movements: np.ndarray
    test: np.ndarray
    subjects: np.ndarray | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def part(self, test: bool) -> tuple[list[np.ndarray], np.ndarray]:
        """(features, grades) of the held-out part (test=True) or the training part."""
        idx = np.flatnonzero(self.test == test)
        return [self.features[i] for i in idx], self.grades[idx]

    def summary(self) -> dict:
        """Counts per part and grade, and the subjects per part when known."""
        out = {}
        for part, flag in (("train", False), ("test", True)):
            grades = self.grades[self.test == flag]
            out[part] = {"n": int(len(grades)),
                         "grades": {g: int((grades == g).sum()) for g in GRADES}}
            if self.subjects is not None:
                out[part]["subjects"] = sorted(set(self.subjects[self.test == flag].tolist()))
        out["skipped"] = len(self.skipped)
        return out


def stratified_split(labels, fraction: float, seed: int) -> np.ndarray:
    """A test mask (N,) holding out `fraction` of every label's items, drawn at random; a label
    with two or more items keeps at least one on each side."""
    if not 0 < fraction < 1:
        raise ValueError(f"test fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        n = len(idx)
        n_test = 0 if n < 2 else min(max(round(fraction * n), 1), n - 1)
        test[idx[:n_test]] = True
    return test


def real_set(cfg: Profile, progress: bool = False) -> GradedSet:
    """The run's aligned FMS clips (every view and mirrored copy the profile's corpus holds),
    with the corpus's subject split: train subjects train, val and test subjects are held out.
    Clips the reader drops (broken files, outside 40..199 frames) or without metadata are listed
    in `skipped`; ValueError if a subject ends up on both sides."""
    root = corpora.fms_corpus_root(cfg, progress)
    meta = read_fms_meta(root)
    features, grades, movements, subjects, test, skipped = [], [], [], [], [], []
    for split in SPLITS:
        data = read_split(root, split, progress=progress)
        skipped += data.skipped + data.filtered
        for item in data.items:
            if item.span is not None:        # FMS clips are captioned whole; sub-clips repeat them
                continue
            info = meta.get(item.clip)
            if info is None or info.get("grade") not in GRADES:
                skipped.append((str(root / META_FILE),
                                f"{item.clip}: no metadata" if info is None
                                else f"{item.clip}: grade {info.get('grade')!r} is not 1..3"))
                continue
            features.append(item.motion)
            grades.append(info["grade"])
            movements.append(info["movement"])
            subjects.append(info["subject"])
            test.append(split != "train")
    if not features:
        raise ValueError(f"{root}: no readable FMS clip ({len(skipped)} skipped)")
    subjects, test = np.array(subjects), np.array(test)
    shared = set(subjects[test]) & set(subjects[~test])
    if shared:
        raise ValueError(f"{root}: subjects {sorted(shared)} are in train and held-out splits")
    return GradedSet(REAL, features, np.array(grades), np.array(movements), test, subjects,
                     skipped)


def generated_set(cfg: Profile, name: str, progress: bool = False) -> GradedSet:
    """Model `name`'s generated FMS set (`stages.generated_fms_set`: made once, then reused),
    with GENERATED_TEST_FRACTION held out at random, stratified by the requested grade."""
    data = stages.generated_fms_set(cfg, name, progress=progress)
    grades = np.asarray(data["grades"])
    return GradedSet(name, list(data["features"]), grades, np.asarray(data["movements"]),
                     stratified_split(grades, GENERATED_TEST_FRACTION, cfg.seed))


def classifier_inputs(features: list[np.ndarray], kind: str) -> list[np.ndarray]:
    """What the classifier reads for `kind` (`cfg.classifier.input`): the features (T, 263)
    themselves, or the joints (T, 22, 3) recovered from them."""
    if kind == "features":
        return features
    if kind == "joints":
        return [recover_joints(f) for f in features]
    raise ValueError(f"unknown classifier input {kind!r}; choose 'features' or 'joints'")


def classifier_config(cfg: Profile, dataset: str) -> ClassifierConfig:
    """The profile's classifier settings with the paper's epoch rule: `cfg.classifier.epochs`
    on real clips, `cfg.generation.generated_epochs` on a generated set."""
    epochs = cfg.classifier.epochs if dataset == REAL else cfg.generation.generated_epochs
    return replace(cfg.classifier, epochs=epochs)


def train_on(cfg: Profile, data: GradedSet, progress: bool = False) -> GradeClassifier:
    """A classifier trained on the training part of `data`."""
    features, grades = data.part(test=False)
    config = classifier_config(cfg, data.name)
    return train_classifier(classifier_inputs(features, config.input), grades, config,
                            progress=progress)


def score(clf: GradeClassifier, data: GradedSet, part: str = "test") -> dict:
    """`classification_report` of `clf` on `data`'s held-out part (`test`) or on all of it
    (`all`), with the predicted-grade shares (`predicted`) added."""
    if part not in ("test", "all"):
        raise ValueError(f"part must be 'test' or 'all', got {part!r}")
    if part == "test":
        features, grades = data.part(test=True)
    else:
        features, grades = data.features, data.grades
    if not len(grades):
        raise ValueError(f"dataset {data.name!r} has no motion in part {part!r}")
    pred = clf.predict(classifier_inputs(features, clf.cfg.input))
    report = classification_report(grades, pred)
    report["predicted"] = {g: float((pred == g).mean()) for g in GRADES}
    report["true"] = {g: float((grades == g).mean()) for g in GRADES}
    return report


def clip_statistics(features: list[np.ndarray]) -> np.ndarray:
    """A clip's summary without its time order, (N, 4 * 263): the mean, spread, minimum and
    maximum of every feature over the clip's frames."""
    return np.stack([np.concatenate([f.mean(0), f.std(0), f.min(0), f.max(0)])
                     for f in features])


def fit_forest(features: list[np.ndarray], labels: np.ndarray, seed: int,
               trees: int) -> RandomForestClassifier:
    """A random forest (scikit-learn) fitted to `labels` (N,) on the `clip_statistics` of
    `features` (T_i, 263)."""
    forest = RandomForestClassifier(trees, random_state=seed, n_jobs=-1)
    return forest.fit(clip_statistics(features), labels)


def forest_baseline(real: GradedSet, generated: dict[str, GradedSet], seed: int = 0,
                    trees: int = 200) -> dict[str, float]:
    """A yardstick for the LSTM: a random forest on `clip_statistics`, trained on the grades of
    the real training subjects. Accuracy on the held-out real clips (key `real`) and on every
    motion of each generated set (the real-trained protocol)."""
    forest = fit_forest(*real.part(test=False), seed, trees)
    held_out, held_grades = real.part(test=True)
    out = {real.name: float((forest.predict(clip_statistics(held_out)) == held_grades).mean())}
    for name, data in generated.items():
        out[name] = float((forest.predict(clip_statistics(data.features)) == data.grades).mean())
    return out


def movement_report(true, pred) -> dict:
    """How well predicted movement codes (N,) match the true ones (N,): `accuracy` over the 15
    movements (a left and a right variant are different classes), `test_accuracy` over the 7
    FMS tests (every variant of a test counts as that test), `wrong_side`: the share named as
    the true movement's left-right mirror image, the confusion matrix (15, 15) of counts
    (`confusion`, rows = true, columns = predicted, in MOVEMENTS order) and divided by its rows
    (`confusion_normalised`), and n."""
    true, pred = np.asarray(true), np.asarray(pred)
    test_of = np.vectorize(lambda code: MOVEMENTS[code].test)
    mirror_of = np.vectorize(lambda code: MOVEMENTS[code].mirror)
    cm = confusion_matrix(true, pred, labels=list(MOVEMENTS))
    return {"accuracy": float((true == pred).mean()),
            "test_accuracy": float((test_of(true) == test_of(pred)).mean()),
            "wrong_side": float(((mirror_of(true) == pred) & (true != pred)).mean()),
            "confusion": cm.tolist(), "confusion_normalised": row_shares(cm).tolist(),
            "n": int(len(true))}


def movement_recognition(real: GradedSet, generated: dict[str, GradedSet], seed: int = 0,
                         trees: int = 200) -> dict[str, dict]:
    """Does each set show the movement asked for? A random forest on `clip_statistics`, trained
    on the movement codes of the real training subjects' clips (a mirrored copy carries its
    mirrored code), names the movement of the held-out real clips (key `real`) and of every
    motion of each generated set, whose label is the requested movement: dataset ->
    `movement_report`."""
    train = np.flatnonzero(~real.test)
    forest = fit_forest([real.features[i] for i in train], real.movements[train], seed, trees)
    held_out = np.flatnonzero(real.test)
    out = {real.name: movement_report(
        real.movements[held_out],
        forest.predict(clip_statistics([real.features[i] for i in held_out])))}
    for name, data in generated.items():
        out[name] = movement_report(data.movements,
                                    forest.predict(clip_statistics(data.features)))
    return out


def movement_table(recognition: dict[str, dict]) -> str:
    """`movement_recognition`'s accuracies as a markdown table, one row per dataset."""
    lines = ["| Dataset | Motions | Movement accuracy (15 classes) "
             "| FMS-test accuracy (7 classes) |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['n']} | {r['accuracy']:.3f} | {r['test_accuracy']:.3f} |"
              for name, r in recognition.items()]
    return "\n".join(lines)


def chance_interval(n: int, level: float = 0.95) -> tuple[float, float]:
    """The accuracy range that random guessing among three grades reaches with probability
    `level` on n motions (binomial quantiles)."""
    lo, hi = binom.ppf([(1 - level) / 2, (1 + level) / 2], n, CHANCE)
    return float(lo / n), float(hi / n)


def datasets_table(sets: dict[str, GradedSet]) -> str:
    """A markdown table of the datasets: motions per part, grade counts and subjects."""
    lines = ["| Dataset | Train | Held out | Train grades 1 / 2 / 3 | Held-out grades 1 / 2 / 3 "
             "| Held-out subjects | Skipped |", "|---|---|---|---|---|---|---|"]
    for name, data in sets.items():
        s = data.summary()
        grades = {p: " / ".join(str(s[p]["grades"][g]) for g in GRADES) for p in ("train", "test")}
        subjects = ", ".join(s["test"].get("subjects", [])) or "-"
        lines.append(f"| {name} | {s['train']['n']} | {s['test']['n']} | {grades['train']} | "
                     f"{grades['test']} | {subjects} | {s['skipped']} |")
    return "\n".join(lines)


def metrics_record(cfg: Profile, sets: dict[str, GradedSet], results: dict[str, dict[str, dict]],
                   seconds: dict[str, float], movement: dict[str, dict],
                   forest: dict[str, float] | None = None) -> dict:
    """What the chapter writes to `metrics/classification.json`: per protocol and dataset the
    five metrics, the confusion matrices, n and the predicted-grade shares; `movement`
    (`movement_recognition`) with its confusion matrices' movement codes; the settings, the
    datasets' counts, the aims, the wall times and the paper's Table 2 for comparison."""
    keep = (*METRICS, "confusion", "confusion_normalised", "n", "predicted")
    record = {p: {name: {k: r[k] for k in keep} for name, r in results[p].items()}
              for p in PROTOCOLS}
    return {**record, "protocols": PROTOCOLS, "chance": CHANCE, "input": cfg.classifier.input,
            "epochs": {name: classifier_config(cfg, name).epochs for name in sets},
            "generated_test_fraction": GENERATED_TEST_FRACTION,
            "datasets": {name: data.summary() for name, data in sets.items()},
            "aims": aims(results, movement), "seconds": seconds, "paper_table2": TABLE2,
            "forest_baseline_accuracy": forest, MOVEMENT: movement,
            "movement_codes": list(MOVEMENTS)}


def table2(reports: dict[str, dict], paper: bool = True) -> str:
    """A markdown table in the layout of the paper's Table 2: one row per metric, one column
    per dataset, each followed by the paper's number (in italics) where the paper has one."""
    columns = []                                     # (header, metric -> cell text)
    for name, report in reports.items():
        columns.append((name.capitalize(), {k: f"{100 * report[k]:.1f}%" for k in METRICS}))
        if paper and name in TABLE2:
            columns.append((f"{name.capitalize()} *(paper)*",
                            {k: f"*{100 * v:.0f}%*" for k, v in TABLE2[name].items()}))
    lines = ["| Metric | " + " | ".join(h for h, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(cells[key] for _, cells in columns) + " |"
              for key, label in METRICS.items()]
    return "\n".join(lines)


def aims(results: dict[str, dict[str, dict]], movement: dict[str, dict]) -> list[dict]:
    """Each aim of AIMS checked on `results` (protocol -> dataset -> report) and `movement`
    (`movement_recognition`), one row per dataset it concerns: label, measure, dataset,
    accuracy, target and whether it is reached."""
    measures = {**results, MOVEMENT: movement}
    rows = []
    for aim in AIMS:
        for name, report in measures[aim.measure].items():
            if aim.concerns(name):
                rows.append({"aim": aim.label, "measure": aim.measure, "dataset": name,
                             "accuracy": report["accuracy"], "target": aim.target(),
                             "reached": aim.reached(report["accuracy"])})
    return rows


def aims_table(rows: list[dict]) -> str:
    """The rows of `aims` as a markdown table, a missed aim in bold."""
    lines = ["| Aim | Dataset | Measure | Accuracy | Target | Reached |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['aim']} | {r['dataset']} | {r['measure']} | {r['accuracy']:.3f} | "
              f"{r['target']} | {'yes' if r['reached'] else '**no**'} |" for r in rows]
    return "\n".join(lines)


def aims_beside(runs: dict[str, list[dict]]) -> str:
    """The `aims` rows of several runs (label -> rows, e.g. this build's and a published
    `long` run's) side by side: one line per aim and dataset, each run's accuracy, a missed
    aim in bold, "-" where a run lacks the dataset."""
    keys = list(dict.fromkeys((r["aim"], r["dataset"], r["target"])
                              for rows in runs.values() for r in rows))
    found = {label: {(r["aim"], r["dataset"], r["target"]): r for r in rows}
             for label, rows in runs.items()}

    def cell(row: dict | None) -> str:
        if row is None:
            return "-"
        return f"{row['accuracy']:.3f}" if row["reached"] else f"**{row['accuracy']:.3f}**"
    lines = ["| Aim | Dataset | Target | " + " | ".join(runs) + " |",
             "|---|---|---|" + "---|" * len(runs)]
    lines += [f"| {aim} | {name} | {target} | "
              + " | ".join(cell(found[label].get((aim, name, target))) for label in runs) + " |"
              for aim, name, target in keys]
    return "\n".join(lines)


def aim_for(measure: str, name: str) -> Aim | None:
    """The first aim of AIMS set for dataset `name` under `measure`, None if there is none."""
    return next((a for a in AIMS if a.measure == measure and a.concerns(name)), None)


def fine_tuned(reports: dict[str, dict]) -> list[str]:
    """The fine-tuned models' names among `reports`' datasets (all but real and base)."""
    return [n for n in reports if n not in (REAL, stages.BASE)]
