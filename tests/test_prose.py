"""Tests of fmsnb.publish.prose: the sentences follow the numbers they are made from."""
from fmsnb import grading
from fmsnb.publish import prose
from test_grading import recognition_with, results_with


def test_describe_change_words_follow_the_numbers():
    up = prose.describe_change("FID", (0.5, 0.05), (0.9, 0.1), "base", "tuned")
    assert up.startswith("FID rose from 0.500 ± 0.050 (base) to 0.900 ± 0.100 (tuned)")
    assert "worse (lower is better)" in up
    down = prose.describe_change("R@3", (0.6, 0.01), (0.5, 0.01), "base", "tuned")
    assert "R@3 fell" in down and "worse (higher is better)" in down
    assert "better" in prose.describe_change("MM-Dist", (5.0, 0.1), (4.0, 0.1), "a", "b")
    overlap = prose.describe_change("R@3", (0.60, 0.05), (0.62, 0.05), "a", "b")
    assert "rose" in overlap and "cannot tell" in overlap
    gt = (9.5, 0.1)
    closer = prose.describe_change("Diversity", (7.0, 0.1), (9.0, 0.1), "a", "b", ground_truth=gt)
    assert "closer to the ground truth" in closer
    farther = prose.describe_change("Diversity", (9.0, 0.1), (7.0, 0.1), "a", "b", ground_truth=gt)
    assert "farther from the ground truth" in farther
    paper = prose.describe_change("FID", 0.544, 0.949, "their base", "their tuned")
    assert paper == "FID rose from 0.544 (their base) to 0.949 (their tuned)."
    single = prose.describe_change("FID", (0.5, 0.0), (0.9, 0.0), "a", "b")
    assert "rose" in single and "no interval" in single and "worse" not in single
    same = prose.describe_change("R@3", (0.5, 0.01), (0.5, 0.02), "a", "b")
    assert same.startswith("R@3 was the same, 0.500 ± 0.010 (a) and 0.500 ± 0.020 (b)")
    assert "beyond" in prose.describe_change("MModality", (2.0, 0.1), (3.0, 0.1), "a", "b")


def test_sampler_finding_weighs_speed_against_the_intervals():
    result = {"rows": {"Ground truth": {"R@3": (0.8, 0.01), "FID": (0.0, 0.0)},
                       "DDIM, 50 steps (ours)": {"R@3": (0.60, 0.02), "FID": (1.50, 0.1)},
                       "ancestral, 1000 steps (MDM)": {"R@3": (0.61, 0.02), "FID": (1.00, 0.1)}},
              "seconds_per_motion": {"DDIM, 50 steps (ours)": 0.05,
                                     "ancestral, 1000 steps (MDM)": 1.0},
              "replications": 2, "samples": 64}
    text = prose.sampler_finding(result)
    assert text.startswith("The DDIM sampler takes 0.050 s a motion here, MDM's 1.00 s: 20 times")
    assert "Its R@3 (0.600 ± 0.020) is within the uncertainty of MDM's sampler" in text
    assert "Its FID is 1.500 ± 0.100 against 1.000 ± 0.100 for MDM's sampler: worse by 0.500 " \
           "(lower is better)." in text
    assert text.endswith("(Base model, 2 draws of 64 test captions; ± is a 95% interval over "
                         "the draws.)")


def test_an_aims_target_in_words():
    assert prose.aim_words(grading.Aim("x", "within", ("real",), at_most=0.4)) == "at most 40%"
    assert prose.aim_words(grading.aim_for("within", "real")) == "at least 85%"


def test_findings_are_worded_from_the_numbers():
    good = prose.findings(results_with(0.95, 0.34, (0.6, 0.8, 0.7), (0.3, 0.78, 0.9)))
    assert "reaching the project's aim" in good["real"]
    assert "inside the range" in good["base"]
    assert "Every fine-tuned set beats the base set" in good["fine_tuned"]
    assert "As in the paper" in good["fine_tuned"]
    assert ("Of the fine-tuned sets, 2 of 3 reach their aims (at least 50% for numerical; "
            "at least 60% for textual and token)") in good["real_trained"]
    assert "2 of 3 reach the aim (at least 70%)" in good["fine_tuned"]
    dominant = good["real_trained"].split("Whatever was requested")[1]
    assert "grade 2" in dominant and "(base)" in dominant and "(numerical)" in dominant
    assert "(textual)" not in dominant                 # mostly recognised: no single grade
    assert "For numerical (60% vs 30%), the paper's protocol scores clearly higher" in \
        good["protocols"]
    assert "For token (70% vs 90%), the real-trained classifier does better" in good["protocols"]
    assert "For textual (80% vs 78%), the two protocols agree" in good["protocols"]
    assert "reaches 60% (numerical), 80% (textual) and 70% (token)." in good["fine_tuned"]

    bad = prose.findings(results_with(0.5, 0.8, (0.35, 0.3, 0.35), (0.35, 0.3, 0.35)))
    assert "short of the project's aim" in bad["real"]
    assert "outside the range" in bad["base"]
    assert "No fine-tuned set beats the base set" in bad["fine_tuned"]
    assert "their order says nothing" in bad["fine_tuned"]
    middling = prose.findings(results_with(0.9, 0.34, (0.7, 0.5, 0.9), (0.6, 0.6, 0.6)))
    assert "Unlike the paper" in middling["fine_tuned"]
    assert "over-predicts grade 2" in bad["real"]
    assert all(f"({n})" in bad["real_trained"].split("Whatever")[1]
               for n in ("base", "numerical", "textual", "token"))
    assert "none is above the range of random guessing" in bad["fine_tuned"]
    assert "neither protocol is above the range" in bad["protocols"]


def test_findings_read_their_targets_from_the_aims(monkeypatch):
    results = results_with(0.8, 0.34, (0.6, 0.8, 0.7), (0.3, 0.78, 0.9))
    assert "short of the project's aim (at least 85%)" in prose.findings(results)["real"]
    monkeypatch.setattr(grading, "AIMS", (grading.Aim("x", "within", ("real",), at_least=0.75),))
    assert "reaching the project's aim (at least 75%)" in prose.findings(results)["real"]


def test_forest_finding_is_worded_from_the_numbers():
    results = results_with(0.7, 0.34, (0.5, 0.5, 0.5), (0.3, 0.4, 0.35))
    text = prose.forest_finding(results, {"real": 0.87, "numerical": 0.62, "textual": 0.4,
                                            "token": 0.3})
    assert "forest reaches 87%, the LSTM 70%" in text and "within reach" in text
    assert "62% (numerical), 40% (textual) and 30% (token)" in text
    assert "1 of 3 reach their aims (at least 50% for numerical;" in text
    same = prose.forest_finding(results, {"real": 0.72, "numerical": 0.3, "textual": 0.3,
                                            "token": 0.3})
    assert "not what limits" in same


def test_movement_finding_is_worded_from_the_numbers():
    text = prose.movement_finding(recognition_with(0.97, (0.9, 0.5, 0.8)))
    assert "names the movement of 97% of 150 clips" in text and "reaching the aim" in text
    assert "(at least 95%)" in text
    assert "90% (numerical), 50% (textual) and 80% (token)" in text
    assert "2 of 3 reach the aim (at least 80%)" in text
    assert "wrong side" in text and "(textual)" in text.split("wrong side")[1]
    weak = prose.movement_finding(recognition_with(0.6, (0.97, 0.97, 0.97)))
    assert "short of the aim" in weak and "No fine-tuned set has more than 5%" in weak
