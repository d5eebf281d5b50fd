"""Tests of the source listings chapters show."""
import inspect

from fmsnb.diffusion import guided
from fmsnb.publish.listing import listing


def test_a_listing_is_the_functions_own_source_with_its_place():
    text = listing(guided).data
    lines, first = inspect.getsourcelines(guided)
    assert text.startswith(f"`fmsnb/diffusion.py`, line {first}:\n\n```python\ndef guided(")
    assert text.endswith("```") and "".join(lines).rstrip("\n") in text
