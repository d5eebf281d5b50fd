"""FMS captions and the grade-conditioning styles."""
import pickle

import pytest

from fmsnb.captions import (GRADE_PHRASES, STYLES, SUBJECT, condition, movement_captions,
                            plain_captions)
from fmsnb.fms import MOVEMENTS
from fmsnb.humanml3d import mirror_caption

SQUAT = "a person performs a deep squat with their heels on the floor"


def test_every_movement_has_paraphrases_starting_with_the_subject():
    seen = set()
    for code, movement in MOVEMENTS.items():
        captions = movement_captions(code)
        assert len(captions) >= 3 and len(set(captions)) == len(captions)
        assert all(c.startswith(SUBJECT + " ") for c in captions)
        assert movement.test.split()[-1].replace("-", " ") in captions[0].replace("-", " ")
        seen.update(captions)
    assert movement_captions("m01")[0] == SQUAT
    # Different movements never share a caption.
    assert len(seen) == sum(len(movement_captions(m)) for m in MOVEMENTS)


def test_variants_name_their_side():
    assert "left leg" in movement_captions("m03")[0] and "right" not in movement_captions("m03")[0]
    assert "right leg" in movement_captions("m04")[0]
    assert "left arm and right leg" in movement_captions("m14")[0]
    assert "board" in movement_captions("m02")[0] and "board" not in movement_captions("m01")[0]


@pytest.mark.parametrize("code", sorted(MOVEMENTS))
def test_mirrored_captions_are_the_mirror_movements_captions(code):
    mirrored = [mirror_caption(c) for c in movement_captions(code)]
    assert mirrored == movement_captions(MOVEMENTS[code].mirror)


def test_tokens_follow_the_humanml3d_style():
    caption = plain_captions("m01")[0]
    assert caption.text == SQUAT
    assert caption.tokens[:4] == ["a/DET", "person/NOUN", "perform/VERB", "a/DET"]
    assert "heel/NOUN" in caption.tokens and caption.whole_clip
    # The verbs of the paraphrases are tagged as verbs, not as plural nouns.
    assert "squat/VERB" in plain_captions("m01")[1].tokens
    assert "step/VERB" in plain_captions("m03")[2].tokens
    for code in MOVEMENTS:
        for c in plain_captions(code):
            assert len(c.tokens) == len(c.text.replace(",", "").split())


@pytest.mark.parametrize("grade", [1, 2, 3])
def test_styles_produce_the_documented_captions(grade):
    assert condition(SQUAT, grade, "none") == SQUAT
    assert condition(SQUAT, grade, "numerical") == f"{SQUAT}, FMS score {grade}"
    textual = condition(SQUAT, grade, "textual")
    assert textual == GRADE_PHRASES[grade] + SQUAT[len(SUBJECT):]
    assert textual.endswith("person performs a deep squat with their heels on the floor")
    assert condition(SQUAT, grade, "token") == SQUAT and STYLES["token"].grade_token


def test_textual_phrases_are_the_papers():
    assert condition(SQUAT, 1, "textual").startswith("an injured person performs")
    assert condition(SQUAT, 2, "textual").startswith("a moderately fit person performs")
    assert condition(SQUAT, 3, "textual").startswith("a very athletic person performs")
    assert not any(s.grade_token for name, s in STYLES.items() if name != "token")


def test_a_style_pickles_for_the_data_loaders_worker_processes():
    for style in STYLES.values():
        again = pickle.loads(pickle.dumps(style))
        assert again.name == style.name and again.condition(SQUAT, 3) == style.condition(SQUAT, 3)


def test_unknown_style_grade_or_movement_raise_naming_the_allowed_values():
    with pytest.raises(ValueError, match="numerical"):
        condition(SQUAT, 2, "verbal")
    for grade in (0, 4, 2.0, True):
        with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
            condition(SQUAT, grade, "numerical")
    with pytest.raises(ValueError, match="m15"):
        movement_captions("m16")
    with pytest.raises(ValueError, match="does not start"):
        condition("someone squats", 1, "textual")
