"""Tests of the profile dataclasses beyond what loading them in every other test shows."""
from pathlib import Path

from fmsnb.config import Profile


def test_data_file_is_absolute_as_given_or_under_the_data_root():
    with_root = Profile("p", data_root="/data")
    assert with_root.data_file("t2m/finest.tar") == Path("/data/t2m/finest.tar")
    assert with_root.data_file("/elsewhere/clip.pt") == Path("/elsewhere/clip.pt")
    without = Profile("p")
    assert without.data_file("/elsewhere/clip.pt") == Path("/elsewhere/clip.pt")
    assert without.data_file("t2m/finest.tar") is None
