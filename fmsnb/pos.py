"""Word/POS tokens for the project's own captions, in the HumanML3D token style, without spaCy.

HumanML3D stores each caption with tokens "word/POS" made by spaCy: hyphens removed, only
alphabetic words kept, coarse (universal) POS tags, nouns and verbs lemmatised except the word
"left" (e.g. "a person walks forward" -> a/DET person/NOUN walk/VERB forward/ADV). The T2M
evaluator reads these tokens. We only ever tag captions we generate ourselves, so a fixed
lexicon (word -> (lemma, POS)) covering exactly the vocabulary of the caption templates of
`fmsnb.standin.actions` and `fmsnb.captions` replaces the parser; words are lowercased first
(the evaluator's word vectors are lowercase). An unknown word is an error naming it, so templates
and lexicon cannot drift apart. One context rule stands in
for the parser where a word's tag depends on its neighbours (`CONTEXT_WORDS`): "left", "right"
and "back" are ADJ before a noun ("the left hand"), NOUN after a determiner ("to the left",
"lies on the back") and ADV otherwise ("turns left", "brings it back").
"""
from __future__ import annotations

import re
from typing import Mapping

# word -> (lemma, coarse POS). Possessives are DET, as in HumanML3D's tokens. A surface form has
# one entry, so templates use "squats", "steps", "lunges", "jumps" only as verbs and the
# singular "squat", "step", "lunge", "jump" only as nouns.
LEXICON: dict[str, tuple[str, str]] = {
    # determiners, pronouns, numbers
    "a": ("a", "DET"), "all": ("all", "DET"), "an": ("an", "DET"), "both": ("both", "DET"),
    "five": ("five", "NUM"), "four": ("four", "NUM"), "it": ("it", "PRON"), "one": ("one", "NUM"),
    "someone": ("someone", "PRON"), "the": ("the", "DET"), "their": ("their", "DET"),
    "them": ("them", "PRON"), "three": ("three", "NUM"),
    # adpositions, conjunctions, interjections
    "above": ("above", "ADP"), "and": ("and", "CCONJ"), "as": ("as", "ADP"), "at": ("at", "ADP"),
    "behind": ("behind", "ADP"), "from": ("from", "ADP"), "hello": ("hello", "INTJ"),
    "in": ("in", "ADP"), "into": ("into", "ADP"), "of": ("of", "ADP"), "on": ("on", "ADP"),
    "onto": ("onto", "ADP"), "out": ("out", "ADP"), "over": ("over", "ADP"), "to": ("to", "ADP"),
    "toward": ("toward", "ADP"), "while": ("while", "SCONJ"), "with": ("with", "ADP"),
    # nouns (lemmatised)
    "arm": ("arm", "NOUN"), "arms": ("arm", "NOUN"), "bar": ("bar", "NOUN"),
    "board": ("board", "NOUN"), "body": ("body", "NOUN"), "chair": ("chair", "NOUN"),
    "circle": ("circle", "NOUN"), "curve": ("curve", "NOUN"), "direction": ("direction", "NOUN"),
    "face": ("face", "NOUN"), "feet": ("foot", "NOUN"), "fists": ("fist", "NOUN"),
    "floor": ("floor", "NOUN"), "fms": ("fms", "PROPN"), "foot": ("foot", "NOUN"),
    "fours": ("four", "NOUN"), "front": ("front", "NOUN"), "ground": ("ground", "NOUN"),
    "hand": ("hand", "NOUN"), "hands": ("hand", "NOUN"), "head": ("head", "NOUN"),
    "heels": ("heel", "NOUN"), "height": ("height", "NOUN"), "hips": ("hip", "NOUN"),
    "human": ("human", "NOUN"), "hurdle": ("hurdle", "NOUN"), "kick": ("kick", "NOUN"),
    "knee": ("knee", "NOUN"), "knees": ("knee", "NOUN"), "leg": ("leg", "NOUN"),
    "line": ("line", "NOUN"), "lunge": ("lunge", "NOUN"), "man": ("man", "NOUN"),
    "mobility": ("mobility", "NOUN"), "pace": ("pace", "NOUN"), "person": ("person", "NOUN"),
    "piece": ("piece", "NOUN"), "place": ("place", "NOUN"), "pushup": ("pushup", "NOUN"),
    "raise": ("raise", "NOUN"), "score": ("score", "NOUN"), "seat": ("seat", "NOUN"),
    "shoulder": ("shoulder", "NOUN"), "side": ("side", "NOUN"), "sides": ("side", "NOUN"),
    "spot": ("spot", "NOUN"), "squat": ("squat", "NOUN"), "stability": ("stability", "NOUN"),
    "step": ("step", "NOUN"), "stick": ("stick", "NOUN"), "stop": ("stop", "NOUN"),
    "test": ("test", "NOUN"), "times": ("time", "NOUN"), "toes": ("toe", "NOUN"),
    "top": ("top", "NOUN"), "trunk": ("trunk", "NOUN"), "way": ("way", "NOUN"),
    "woman": ("woman", "NOUN"),
    # verbs (lemmatised) and auxiliaries
    "bends": ("bend", "VERB"), "bring": ("bring", "VERB"), "brings": ("bring", "VERB"),
    "comes": ("come", "VERB"), "curving": ("curve", "VERB"), "does": ("do", "VERB"),
    "held": ("hold", "VERB"), "holding": ("hold", "VERB"), "holds": ("hold", "VERB"),
    "hops": ("hop", "VERB"), "is": ("is", "AUX"), "jogging": ("jog", "VERB"),
    "jogs": ("jog", "VERB"), "jumps": ("jump", "VERB"), "keeping": ("keep", "VERB"),
    "kicks": ("kick", "VERB"), "kneels": ("kneel", "VERB"), "leans": ("lean", "VERB"),
    "leaps": ("leap", "VERB"), "lies": ("lie", "VERB"), "lifting": ("lift", "VERB"),
    "lifts": ("lift", "VERB"), "lowers": ("lower", "VERB"), "lunges": ("lunge", "VERB"),
    "lying": ("lie", "VERB"), "marches": ("march", "VERB"), "marching": ("march", "VERB"),
    "moves": ("move", "VERB"), "performs": ("perform", "VERB"), "pushes": ("push", "VERB"),
    "puts": ("put", "VERB"), "raised": ("raise", "VERB"), "raises": ("raise", "VERB"),
    "reaches": ("reach", "VERB"), "rotates": ("rotate", "VERB"), "running": ("run", "VERB"),
    "runs": ("run", "VERB"), "seated": ("seat", "VERB"), "shuffles": ("shuffle", "VERB"),
    "sits": ("sit", "VERB"), "slows": ("slow", "VERB"), "spins": ("spin", "VERB"),
    "squats": ("squat", "VERB"), "standing": ("stand", "VERB"), "stands": ("stand", "VERB"),
    "stays": ("stay", "VERB"), "steps": ("step", "VERB"), "stops": ("stop", "VERB"),
    "stretched": ("stretch", "VERB"), "stretches": ("stretch", "VERB"),
    "swings": ("swing", "VERB"), "takes": ("take", "VERB"), "touch": ("touch", "VERB"),
    "touches": ("touch", "VERB"), "tries": ("try", "VERB"), "turning": ("turn", "VERB"),
    "turns": ("turn", "VERB"), "walking": ("walk", "VERB"), "walks": ("walk", "VERB"),
    "waves": ("wave", "VERB"), "waving": ("wave", "VERB"),
    # adjectives
    "active": ("active", "ADJ"), "athletic": ("athletic", "ADJ"), "big": ("big", "ADJ"),
    "deep": ("deep", "ADJ"), "few": ("few", "ADJ"), "fit": ("fit", "ADJ"), "full": ("full", "ADJ"),
    "half": ("half", "ADJ"), "high": ("high", "ADJ"), "injured": ("injured", "ADJ"),
    "inline": ("inline", "ADJ"), "invisible": ("invisible", "ADJ"), "low": ("low", "ADJ"),
    "opposite": ("opposite", "ADJ"), "other": ("other", "ADJ"), "possible": ("possible", "ADJ"),
    "quick": ("quick", "ADJ"), "reverse": ("reverse", "ADJ"), "rotary": ("rotary", "ADJ"),
    "slow": ("slow", "ADJ"), "straight": ("straight", "ADJ"), "upright": ("upright", "ADJ"),
    "whole": ("whole", "ADJ"),
    # adverbs
    "again": ("again", "ADV"), "ahead": ("ahead", "ADV"), "alternately": ("alternately", "ADV"),
    "around": ("around", "ADV"), "backward": ("backward", "ADV"),
    "backwards": ("backwards", "ADV"), "below": ("below", "ADV"), "briefly": ("briefly", "ADV"),
    "briskly": ("briskly", "ADV"), "down": ("down", "ADV"), "fast": ("fast", "ADV"),
    "forward": ("forward", "ADV"), "halfway": ("halfway", "ADV"),
    "moderately": ("moderately", "ADV"), "once": ("once", "ADV"), "overhead": ("overhead", "ADV"),
    "quickly": ("quickly", "ADV"), "repeatedly": ("repeatedly", "ADV"),
    "sideways": ("sideways", "ADV"), "slowly": ("slowly", "ADV"), "still": ("still", "ADV"),
    "then": ("then", "ADV"), "together": ("together", "ADV"), "twice": ("twice", "ADV"),
    "up": ("up", "ADV"), "very": ("very", "ADV"),
    # context-dependent words: the entry is the fallback, see CONTEXT_WORDS
    "left": ("left", "ADV"), "right": ("right", "ADV"), "back": ("back", "ADV"),
}
# Words whose tag depends on their neighbours: ADJ before a noun, NOUN after a determiner.
CONTEXT_WORDS = frozenset({"left", "right", "back"})
_WORD = re.compile(r"[^\W\d_]+|\S")


def words(caption: str) -> list[str]:
    """The words of a caption the tokens are made of: hyphens removed, lowercased, only
    alphabetic words (punctuation and numbers dropped, as in HumanML3D)."""
    return [w for w in _WORD.findall(caption.replace("-", "").lower()) if w.isalpha()]


def tag(caption: str, lexicon: Mapping[str, tuple[str, str]] = LEXICON) -> list[str]:
    """The HumanML3D "word/POS" tokens of a caption, e.g. "a person walks forward." ->
    ['a/DET', 'person/NOUN', 'walk/VERB', 'forward/ADV']. ValueError for a word not in
    `lexicon` (pass an extended copy of LEXICON to tag other vocabularies)."""
    ws = words(caption)
    unknown = [w for w in ws if w not in lexicon]
    if unknown:
        raise ValueError(f"word(s) {sorted(set(unknown))} of caption {caption!r} are not in the "
                         "POS lexicon (fmsnb/pos.py LEXICON); add them with their lemma and tag")
    tagged = [list(lexicon[w]) for w in ws]
    for i, w in enumerate(ws):
        if w not in CONTEXT_WORDS:
            continue
        if i + 1 < len(ws) and tagged[i + 1][1] == "NOUN":
            tagged[i][1] = "ADJ"
        elif i > 0 and tagged[i - 1][1] == "DET":
            tagged[i][1] = "NOUN"
    return [f"{lemma}/{pos}" for lemma, pos in tagged]
