"""FMS captions: plain words for each movement, and the grade-conditioning styles (paper 4.4).

Each of the 15 recorded movements gets a few paraphrased captions, all starting with the subject
phrase "a person" (e.g. "a person performs a deep squat with their heels on the floor"). They are
filled in from one template set per FMS test with slots for the variant (side of the raised leg,
heel support), so that a movement's captions and its left-right mirror's differ exactly by
"left" <-> "right" and `humanml3d.mirror_caption` maps one onto the other. The corpus on disk
stores the plain captions; the grade joins them at load time through a conditioning style, all
defined here in `STYLES`: `none` (the plain caption, the base model's input), `numerical`
(", FMS score x" appended), `textual` ("a person" replaced by "an injured person", "a moderately
fit person" or "a very athletic person" for grades 1, 2, 3) and `token` (the plain caption, the
grade going to the model as a learned grade token, `Style.grade_token`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fmsnb.dataset import Caption
from fmsnb.fms import GRADES, MOVEMENTS
from fmsnb.pos import LEXICON, tag

SUBJECT = "a person"
# Textual style (paper 4.4): the subject phrase that carries each grade.
GRADE_PHRASES = {1: "an injured person", 2: "a moderately fit person", 3: "a very athletic person"}

# Paraphrase templates per FMS test; `{side}`/`{other}` are the variant's (raised, other) side,
# `{arm}`/`{leg}` the raised arm and leg of rotary stability, `{heels}` the squat's heel support.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "deep squat": (
        "a person performs a deep squat with their heels {heels}",
        "a person squats down as low as possible with the arms held overhead and the heels {heels}",
        "a person does a deep squat holding a stick above their head, heels {heels}",
    ),
    "hurdle step": (
        "a person performs a hurdle step with their {side} leg up",
        "a person lifts the {side} leg over a hurdle while standing on the {other} leg",
        "a person steps over a low bar with the {side} foot and brings it back",
    ),
    "in-line lunge": (
        "a person performs an in-line lunge with their {side} leg in front",
        "a person lunges down with the {side} foot in front of the {other} foot on one line",
        "a person lowers the {other} knee to the floor behind the {side} foot and stands up again",
    ),
    "shoulder mobility": (
        "a person performs a shoulder mobility test with their {side} arm up",
        "a person reaches behind the back with the {side} hand over the shoulder "
        "and the {other} hand from below",
        "a person tries to bring both fists together behind the back, the {side} arm on top",
    ),
    "active straight leg raise": (
        "a person performs an active straight leg raise with their {side} leg up",
        "a person lies on the back and raises the straight {side} leg as high as possible",
        "a person lying on the floor lifts the {side} leg up while keeping it straight",
    ),
    "trunk stability push-up": (
        "a person performs a trunk stability push-up",
        "a person lies face down and pushes the whole body up from the floor in one piece",
        "a person does a push-up from the ground while keeping the body straight",
    ),
    "rotary stability": (
        "a person performs a rotary stability test with their {arm} arm and {leg} leg",
        "a person on hands and knees stretches out the {arm} arm and the {leg} leg "
        "and then brings them together",
        "a person kneels on all fours and lifts the {arm} arm together with the {leg} leg",
    ),
}

# Slot values per movement; the FMS test of each movement comes from `fms.MOVEMENTS`.
SLOTS: dict[str, dict[str, str]] = {
    "m01": {"heels": "on the floor"},
    "m02": {"heels": "raised on a board"},
    "m03": {"side": "left", "other": "right"},
    "m04": {"side": "right", "other": "left"},
    "m05": {"side": "left", "other": "right"},
    "m06": {"side": "right", "other": "left"},
    "m07": {"side": "left", "other": "right"},
    "m08": {"side": "right", "other": "left"},
    "m09": {"side": "left", "other": "right"},
    "m10": {"side": "right", "other": "left"},
    "m11": {},
    "m12": {"arm": "left", "leg": "left"},
    "m13": {"arm": "right", "leg": "right"},
    "m14": {"arm": "left", "leg": "right"},
    "m15": {"arm": "right", "leg": "left"},
}


# pos.LEXICON reads "squats", "steps" and "lunges" as plural nouns; in these captions they are
# only ever verbs ("a person squats down"), so the FMS captions are tagged with this extension.
FMS_LEXICON = {**LEXICON, "squats": ("squat", "VERB"), "steps": ("step", "VERB"),
               "lunges": ("lunge", "VERB")}


def fms_tag(text: str) -> list[str]:
    """The word/POS tokens of an FMS caption (any style)."""
    return tag(text, FMS_LEXICON)


def _plain(text: str, grade: int) -> str:
    return text


def _numerical(text: str, grade: int) -> str:
    return f"{text}, FMS score {grade}"


def _textual(text: str, grade: int) -> str:
    if not text.startswith(SUBJECT + " "):
        raise ValueError(f"the textual style replaces the leading {SUBJECT!r}, "
                         f"but the caption {text!r} does not start with it")
    return GRADE_PHRASES[grade] + text[len(SUBJECT):]


@dataclass(frozen=True)
class Style:
    """A conditioning style: how the grade enters the caption, and whether the model also gets
    the grade itself (`grade_token`, for a learned grade embedding). A style name is checked
    once where it comes in (`check_style`); the package passes this object on from there."""
    name: str
    description: str
    apply: Callable[[str, int], str]   # module functions, not lambdas: a Style pickles
    grade_token: bool = False

    def condition(self, caption: str, grade: int) -> str:
        """The caption text as the model sees it under this style for an FMS `grade` (1..3)."""
        return self.apply(caption, check_grade(grade))


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("none", "the plain caption (the base model's input; no grade)", _plain),
    Style("numerical", "', FMS score x' appended to the caption", _numerical),
    Style("textual", "'a person' replaced by a fitness description of the grade", _textual),
    Style("token", "the plain caption; the grade goes to the model as a learned token", _plain,
          grade_token=True),
)}


def check_style(style: str) -> Style:
    """The Style called `style`; ValueError naming the allowed styles otherwise."""
    if style not in STYLES:
        raise ValueError(f"unknown conditioning style {style!r}; expected one of {list(STYLES)}")
    return STYLES[style]


def check_grade(grade: int) -> int:
    """`grade` as an int if it is an FMS grade 1..3; ValueError otherwise."""
    if isinstance(grade, bool) or not isinstance(grade, (int, np.integer)) or grade not in GRADES:
        raise ValueError(f"unknown FMS grade {grade!r}; expected one of {GRADES}")
    return int(grade)


def check_movement(movement: str) -> str:
    if movement not in MOVEMENTS:
        raise ValueError(f"unknown movement {movement!r}; expected one of {list(MOVEMENTS)}")
    return movement


def condition(caption: str, grade: int, style: str) -> str:
    """`Style.condition` by the style's name, as the chapters call it."""
    return check_style(style).condition(caption, grade)


def movement_captions(movement: str) -> list[str]:
    """The plain captions of a movement code ("m01".."m15"), the main wording first."""
    test = MOVEMENTS[check_movement(movement)].test
    return [template.format(**SLOTS[movement]) for template in TEMPLATES[test]]


def plain_captions(movement: str) -> list[Caption]:
    """The plain captions of a movement with their word/POS tokens, for the texts/ files."""
    return [Caption(text, fms_tag(text)) for text in movement_captions(movement)]
