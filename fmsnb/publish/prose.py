"""Prose made from numbers: the sentences a chapter words from its run's results.

A page's finding must say what its own build measured, so its sentences are written here from
the numbers, each verdict ("better", "above chance", "reaching the aim") decided by them, with
the numbers quoted. `describe_change` words how a Table 1 metric moved from one row to another,
judged against the 95% intervals (chapter 05), and `sampler_finding` how the book's fast sampler
compares with MDM's (chapter 08); `findings`, `movement_finding` and `forest_finding` word the
grade-classification results against chance and the project's aims (`grading.AIMS`, chapter 06).
"""
from __future__ import annotations

import numpy as np

from fmsnb import stages
from fmsnb.fms import GRADES
from fmsnb.grading import MOVEMENT, REAL, Aim, aim_for, chance_interval, fine_tuned
from fmsnb.t2m_protocol import GROUND_TRUTH
from fmsnb.table1 import cell

# How the paper reads each metric: higher or lower is better, or closer to the ground truth.
BETTER = {"R@1": "higher", "R@2": "higher", "R@3": "higher", "FID": "lower", "MM-Dist": "lower",
          "Diversity": "ground truth", "MModality": None}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# --- Table 1 (chapters 05 and 08) ----------------------------------------------------------

def _as_pair(value) -> tuple[float, float | None]:
    """(mean, ci) from a (mean, ci) pair, or (mean, None) from a bare mean."""
    if isinstance(value, (tuple, list)):
        return float(value[0]), float(value[1])
    return float(value), None


def describe_change(metric: str, before, after, before_label: str, after_label: str,
                    ground_truth=None, digits: int = 3) -> str:
    """One sentence on how `metric` moved from row `before_label` to row `after_label`.

    before/after are (mean, ci) or bare means (the paper's). With intervals, the sentence says
    whether the change exceeds their combined half-widths (the 95% intervals do not overlap),
    or that it cannot be judged when both half-widths are 0 (a single replication); beyond the
    intervals it says whether that is better or worse by the metric's reading (higher / lower,
    or closer to `ground_truth` (mean, ci) for diversity). Multimodality gets no verdict.
    """
    (a, ca), (b, cb) = _as_pair(before), _as_pair(after)
    if b == a:
        sentence = (f"{metric} was the same, {cell(before, digits)} ({before_label}) and "
                    f"{cell(after, digits)} ({after_label})")
    else:
        sentence = (f"{metric} {'rose' if b > a else 'fell'} from {cell(before, digits)} "
                    f"({before_label}) to {cell(after, digits)} ({after_label})")
    if ca is None or cb is None:
        return sentence + "."
    if ca == 0 and cb == 0:     # one replication: no spread to judge the change against
        return sentence + "; a single replication gives no interval to judge it by."
    if abs(b - a) <= ca + cb:
        return sentence + "; the 95% intervals overlap, so this protocol cannot tell them apart."
    better = BETTER.get(metric)
    if better == "ground truth" and ground_truth is not None:
        gt = _as_pair(ground_truth)[0]
        verdict = "closer to" if abs(b - gt) < abs(a - gt) else "farther from"
        return sentence + f", beyond the 95% intervals: {verdict} the ground truth."
    if better in ("higher", "lower"):
        improved = (b > a) == (better == "higher")
        return sentence + (f", beyond the 95% intervals: {'better' if improved else 'worse'} "
                           f"({better} is better).")
    return sentence + ", beyond the 95% intervals."


def sampler_finding(result: dict) -> str:
    """Sentences comparing the two samplers of `performance.sampler_quality`, worded from its
    numbers: the speed-up, and for R@3 and FID whether the fast sampler's mean lies within the
    other's interval, or how much it gives up."""
    (fast, f), (slow, s) = [(n, r) for n, r in result["rows"].items() if n != GROUND_TRUTH]
    speed = result["seconds_per_motion"]
    text = [f"The {fast.split(',')[0]} sampler takes {speed[fast]:.3f} s a motion here, MDM's "
            f"{speed[slow]:.2f} s: {speed[slow] / speed[fast]:.0f} times faster."]
    for metric in ("R@3", "FID"):
        better = BETTER[metric]
        (a, ci_a), (b, ci_b) = f[metric], s[metric]
        if abs(a - b) <= max(ci_a, ci_b):
            text.append(f"Its {metric} ({a:.3f} ± {ci_a:.3f}) is within the uncertainty of "
                        f"MDM's sampler ({b:.3f} ± {ci_b:.3f}).")
        else:
            gives_up = (a < b) if better == "higher" else (a > b)
            text.append(f"Its {metric} is {a:.3f} ± {ci_a:.3f} against {b:.3f} ± {ci_b:.3f} for "
                        f"MDM's sampler: {'worse' if gives_up else 'better'} by {abs(a - b):.3f}"
                        f" ({better} is better).")
    text.append(f"(Base model, {result['replications']} draws of {result['samples']} test "
                "captions; ± is a 95% interval over the draws.)")
    return " ".join(text)


# --- grade classification (chapter 06) -----------------------------------------------------

def aim_words(aim: Aim) -> str:
    """An aim's target as a sentence words it, e.g. 'at least 85%'."""
    return (f"at least {_pct(aim.at_least)}" if aim.at_least is not None
            else f"at most {_pct(aim.at_most)}")


def _aims_reached(measure: str, accuracy: dict[str, float]) -> str:
    """'k of n reach the aim (at least x%)' over the sets of `accuracy` (name -> accuracy) that
    an aim of `measure` concerns, each against its own aim; the targets named per set where
    they differ."""
    set_aims = {n: a for n in accuracy if (a := aim_for(measure, n)) is not None}
    reached = sum(a.reached(accuracy[n]) for n, a in set_aims.items())
    by_target: dict[str, list[str]] = {}
    for n, a in set_aims.items():
        by_target.setdefault(aim_words(a), []).append(n)
    if len(by_target) == 1:
        targets = f"the aim ({next(iter(by_target))})"
    else:
        targets = "their aims (" + "; ".join(f"{t} for {_join(names)}"
                                             for t, names in by_target.items()) + ")"
    return f"{reached} of {len(set_aims)} reach {targets}"


def _recalls(report: dict) -> dict[int, float]:
    cm = np.asarray(report["confusion_normalised"])
    return {g: float(cm[i, i]) for i, g in enumerate(GRADES)}


def _over_predicted(report: dict) -> tuple[int, float]:
    """The grade predicted most in excess of its true share, and that excess."""
    excess = {g: report["predicted"][g] - report["true"][g] for g in GRADES}
    g = max(excess, key=excess.get)
    return g, excess[g]


def _above_chance(report: dict) -> bool:
    return report["accuracy"] > chance_interval(report["n"])[1]


def _dominant(reports: dict[str, dict], names: list[str]) -> str:
    """A sentence naming the sets most of whose motions get one grade, whatever was requested
    (empty when no set has a grade predicted for more than half of its motions)."""
    by_grade: dict[int, list[str]] = {}
    for n in names:
        g = max(reports[n]["predicted"], key=reports[n]["predicted"].get)
        if reports[n]["predicted"][g] > 0.5:
            by_grade.setdefault(g, []).append(f"{_pct(reports[n]['predicted'][g])} ({n})")
    return "".join(f" Whatever was requested, it calls most motions grade {g}: {_join(sets)}; "
                   f"to a classifier that knows only real clips, these look like grade {g}."
                   for g, sets in sorted(by_grade.items()))


def findings(results: dict[str, dict[str, dict]]) -> dict[str, str]:
    """One paragraph per finding, worded from `results` (protocol -> dataset -> report, each
    report from `grading.score`): `real`, `base`, `fine_tuned`, `real_trained` and `protocols`."""
    within, trained = results["within"], results["real_trained"]
    names = fine_tuned(within)
    out = {}

    real = within[REAL]
    aim = aim_for("within", REAL)
    rec = _recalls(real)
    best, worst = max(rec, key=rec.get), min(rec, key=rec.get)
    over, excess = _over_predicted(real)
    out["real"] = (
        f"On the held-out subjects' real clips the classifier recovers the experts' grade for "
        f"{_pct(real['accuracy'])} of {real['n']} clips (chance: 33%), "
        f"{'reaching' if aim.reached(real['accuracy']) else 'short of'} the project's aim "
        f"({aim_words(aim)}). "
        f"Its recall is highest for grade {best} ({_pct(rec[best])}) and lowest for grade "
        f"{worst} ({_pct(rec[worst])}). "
        + (f"It over-predicts grade {over}: it calls {_pct(real['predicted'][over])} of the "
           f"clips grade {over}, where {_pct(real['true'][over])} have it."
           if excess > 0.05 else
           "The shares of the grades it predicts match the true shares within 5 points."))

    base = within[stages.BASE]
    lo, hi = chance_interval(base["n"])
    inside = lo <= base["accuracy"] <= hi
    out["base"] = (
        f"The base model gets the same plain caption whatever grade is requested, so its set "
        f"carries no grade by construction and the classifier can only guess. It scores "
        f"{_pct(base['accuracy'])} on {base['n']} held-out motions, "
        + ("inside" if inside else "outside")
        + f" the range {_pct(lo)} to {_pct(hi)} that random guessing reaches 95% of the time on "
        f"that many motions"
        + (": the protocol's noise floor, as it should be." if inside else
           ", a sign that the split or the classifier picks up something other than the grade.")
        + " (The paper's base set: 39%.)")

    beat = [n for n in names if within[n]["accuracy"] > base["accuracy"]]
    above = [n for n in names if _above_chance(within[n])]
    scores = _join([f"{_pct(within[n]['accuracy'])} ({n})" for n in names])
    if len(beat) == len(names):
        verdict = "Every fine-tuned set beats the base set"
    elif beat:
        verdict = f"Only {_join(beat)} beat{'s' if len(beat) == 1 else ''} the base set"
    else:
        verdict = "No fine-tuned set beats the base set"
    chance = (f"{_join(above)} {'is' if len(above) == 1 else 'are'} above the range of random "
              "guessing" if above else "none is above the range of random guessing")
    text = [f"Inside each fine-tuned set the classifier reaches {scores}.",
            f"{verdict}; {chance}, and "
            + _aims_reached("within", {n: within[n]["accuracy"] for n in names}) + "."]
    if {"numerical", "textual"} <= set(names) and not (set(above) & {"numerical", "textual"}):
        text.append("Neither the numerical nor the textual set is above chance, so their order "
                    "says nothing (the paper: textual 75%, numerical 61%).")
    elif {"numerical", "textual"} <= set(names):
        text.append("As in the paper (textual 75%, numerical 61%), the textual set is easier "
                    "to classify than the numerical one."
                    if within["textual"]["accuracy"] > within["numerical"]["accuracy"] else
                    "Unlike the paper (textual 75%, numerical 61%), the textual set is not "
                    "easier to classify than the numerical one here.")
    out["fine_tuned"] = " ".join(text)

    tb = trained[stages.BASE]
    shares = _join([f"{_pct(trained[n]['accuracy'])} ({n})" for n in names])
    weakest = {n: min(_recalls(trained[n]).items(), key=lambda kv: kv[1]) for n in names}
    out["real_trained"] = (
        f"Trained on real clips only, the classifier recognises the requested grade in {shares} "
        f"of the fine-tuned models' motions, against {_pct(tb['accuracy'])} for the base model. "
        "Of the fine-tuned sets, "
        + _aims_reached("real_trained", {n: trained[n]["accuracy"] for n in names}) + ". "
        "The grade each set conveys worst: "
        + _join([f"{n} grade {g} ({_pct(r)} recognised)" for n, (g, r) in weakest.items()])
        + "." + _dominant(trained, [stages.BASE, *names]))

    both = {n: f"{n} ({_pct(within[n]['accuracy'])} vs {_pct(trained[n]['accuracy'])})"
            for n in names}
    gap = {n: within[n]["accuracy"] - trained[n]["accuracy"] for n in names}
    none = [n for n in names if not _above_chance(within[n]) and not _above_chance(trained[n])]
    higher = [n for n in names if n not in none and gap[n] > 0.05]
    lower = [n for n in names if n not in none and gap[n] < -0.05]
    agree = [n for n in names if n not in none + higher + lower]
    text = ["In brackets: accuracy under the paper's protocol, then under the real-trained one."]
    if higher:
        text.append(f"For {_join([both[n] for n in higher])}, the paper's protocol scores "
                    "clearly higher than the real-trained one: those grades are more distinct "
                    "from one another than they are like the real grades, a difference the "
                    "paper's protocol cannot see.")
    if lower:
        text.append(f"For {_join([both[n] for n in lower])}, the real-trained classifier "
                    "does better than one trained inside the set: "
                    "the real clips teach it more about the grades than the set's own motions.")
    if agree:
        text.append(f"For {_join([both[n] for n in agree])}, the two protocols agree within 5 "
                    "points.")
    if none:
        text.append(f"For {_join([both[n] for n in none])}, neither protocol is above the range "
                    "of random guessing: no grade either classifier can find.")
    out["protocols"] = " ".join(text)
    return out


def movement_finding(recognition: dict[str, dict]) -> str:
    """A paragraph on `grading.movement_recognition`'s result, worded from the numbers and the
    aims."""
    real, base = recognition[REAL], recognition[stages.BASE]
    tuned, aim = fine_tuned(recognition), aim_for(MOVEMENT, REAL)
    reached = aim.reached(real["accuracy"])
    text = [f"On the held-out real subjects the forest names the movement of "
            f"{_pct(real['accuracy'])} of {real['n']} clips and its FMS test of "
            f"{_pct(real['test_accuracy'])}, {'reaching' if reached else 'short of'} the aim "
            f"({aim_words(aim)})"
            + ("." if reached else ": a judge that misnames real movements is not to be "
                                   "trusted on generated ones."),
            f"The base model, asked with the plain caption, shows the requested movement in "
            f"{_pct(base['accuracy'])} of its motions and the requested test in "
            f"{_pct(base['test_accuracy'])}."]
    text.append("The fine-tuned models show the requested movement in "
                + _join([f"{_pct(recognition[n]['accuracy'])} ({n})" for n in tuned])
                + " of their motions; "
                + _aims_reached(MOVEMENT, {n: recognition[n]["accuracy"] for n in tuned}) + ".")
    text.append("Counting every variant of a test as that test, they show the requested FMS "
                "test in " + _join([f"{_pct(recognition[n]['test_accuracy'])} ({n})"
                                    for n in tuned]) + ".")
    sided = [n for n in tuned if recognition[n]["wrong_side"] > 0.05]
    if sided:
        text.append("The right test on the wrong side, named as the mirror image of the "
                    "requested movement: "
                    + _join([f"{_pct(recognition[n]['wrong_side'])} ({n})" for n in sided])
                    + " of the motions.")
    else:
        text.append("No fine-tuned set has more than 5% of its motions on the wrong side.")
    return " ".join(text)


def forest_finding(results: dict[str, dict[str, dict]], forest: dict[str, float]) -> str:
    """A paragraph comparing the LSTM (`results`, protocol -> dataset -> report) with
    `grading.forest_baseline`'s accuracies, worded from the numbers."""
    lstm, tuned = results["within"][REAL]["accuracy"], fine_tuned(results["real_trained"])
    better = forest[REAL] - lstm
    text = [f"On the held-out real subjects the forest reaches {_pct(forest[REAL])}, the LSTM "
            f"{_pct(lstm)}."]
    if better > 0.05:
        text.append("The grades are in the clips more plainly than the LSTM finds them: with "
                    "this little training data it fits its training subjects rather than the "
                    "grade, and a better real-data classifier is within reach.")
    elif better < -0.05:
        text.append("The LSTM's reading of the motion over time does better than the summary.")
    else:
        text.append("The two agree within 5 points, so the LSTM is not what limits the score.")
    text.append("Grading the fine-tuned sets, the forest recognises the requested grade in "
                + _join([f"{_pct(forest[n])} ({n})" for n in tuned])
                + " of the motions (the LSTM: "
                + _join([f"{_pct(results['real_trained'][n]['accuracy'])}" for n in tuned])
                + "); held to the real-trained LSTM's targets, "
                + _aims_reached("real_trained", {n: forest[n] for n in tuned}) + ".")
    return " ".join(text)
