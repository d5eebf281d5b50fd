import itertools
import string
from collections import defaultdict

import pytest

from fmsnb.pos import CONTEXT_WORDS, LEXICON, tag, words
from fmsnb.standin import actions

UNIVERSAL_TAGS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
                  "PRON", "PROPN", "SCONJ", "VERB"}


def test_known_captions():
    assert tag("a person walks forward") == ["a/DET", "person/NOUN", "walk/VERB", "forward/ADV"]
    assert tag("The person waves with the LEFT hand.") == [
        "the/DET", "person/NOUN", "wave/VERB", "with/ADP", "the/DET", "left/ADJ", "hand/NOUN"]
    assert tag("someone jumps forward twice") == [
        "someone/PRON", "jump/VERB", "forward/ADV", "twice/ADV"]
    assert tag("a man squats down with both arms overhead") == [
        "a/DET", "man/NOUN", "squat/VERB", "down/ADV", "with/ADP", "both/DET", "arm/NOUN",
        "overhead/ADV"]


def test_context_words():
    assert tag("a person turns left")[-1] == "left/ADV"
    assert tag("a person turns to the right")[-1] == "right/NOUN"
    assert tag("a person kicks with the right foot")[-2] == "right/ADJ"
    assert tag("a person lies on the back")[-1] == "back/NOUN"
    assert tag("a person brings it back")[-1] == "back/ADV"


def test_punctuation_numbers_and_hyphens_dropped():
    assert tag("a person does a push-up, then stands up again!") == [
        "a/DET", "person/NOUN", "do/VERB", "a/DET", "pushup/NOUN", "then/ADV", "stand/VERB",
        "up/ADV", "again/ADV"]
    assert tag("a person squats, FMS score 3") == [
        "a/DET", "person/NOUN", "squat/VERB", "fms/PROPN", "score/NOUN"]
    assert words("  ...  ") == [] and tag("") == []


def test_unknown_word_raises_naming_it():
    with pytest.raises(ValueError, match="cartwheels"):
        tag("a person cartwheels forward")
    extended = {**LEXICON, "cartwheels": ("cartwheel", "VERB")}
    assert tag("a person cartwheels forward", extended)[2] == "cartwheel/VERB"


def test_lexicon_is_consistent():
    for word, (lemma, pos) in LEXICON.items():
        assert pos in UNIVERSAL_TAGS, word
        assert word.isalpha() and word == word.lower(), word
        if pos not in ("NOUN", "VERB"):        # only nouns and verbs are lemmatised
            assert lemma == word, word
    assert CONTEXT_WORDS <= set(LEXICON)
    assert LEXICON["left"][0] == "left"


def test_every_standin_template_word_is_in_the_lexicon():
    fields = string.Formatter()
    for action, variants in actions.TEMPLATES.items():
        for template in itertools.chain(*variants.values()):
            slots = [f for _, f, _, _ in fields.parse(template) if f]
            assert set(slots) <= set(actions.SLOTS), (action, template)
            for values in itertools.product(*(actions.SLOTS[s] for s in slots)):
                caption = template.format(**dict(zip(slots, values)))
                assert tag(caption), caption
    # The blank template words alone, too (a slot-free template must also be covered).
    for template in itertools.chain(*(v for vs in actions.TEMPLATES.values() for v in vs.values())):
        tag(fields.vformat(template, (), defaultdict(str)))
