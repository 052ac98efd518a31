"""The generic `Registry` behind every named kind (tasks, evaluation / context / profiling methods)."""

from __future__ import annotations

import pytest

from attnsteer.errors import AttnsteerError
from attnsteer.registry import Registry


class UnknownColourError(AttnsteerError):
    pass


def make() -> Registry[int]:
    colours: Registry[int] = Registry("colour", UnknownColourError)
    colours.register("red", 1)
    colours.register("green", 2)
    return colours


def test_names_keep_registration_order_and_get_returns_the_item():
    colours = make()
    assert colours.names() == ["red", "green"]
    assert colours.get("green") == 2 and "red" in colours and "blue" not in colours


def test_unknown_name_lists_the_allowed_and_suggests_the_closest():
    with pytest.raises(UnknownColourError, match=r"unknown colour 'gren'; choose one of 'red', 'green'; "
                                                 r"did you mean 'green'\?"):
        make().get("gren")
    with pytest.raises(UnknownColourError) as info:
        make().get("zzz")
    assert "did you mean" not in str(info.value) and "'red', 'green'" in str(info.value)


def test_unknown_may_list_extra_names_such_as_aliases():
    error = make().unknown("al", also=["all"])
    assert isinstance(error, UnknownColourError)
    assert str(error) == "unknown colour 'al'; choose one of 'red', 'green', 'all'; did you mean 'all'?"


def test_a_taken_name_is_refused_and_the_same_item_again_is_harmless():
    colours = make()
    with pytest.raises(ValueError, match="colour name 'red' is already registered by 1"):
        colours.register("red", 3)
    assert colours.register("red", 1) == 1
    assert colours.get("red") == 1


def test_functions_are_the_same_when_defined_in_the_same_place():
    def paint():
        pass

    def other():
        pass

    painters: Registry = Registry("painter", UnknownColourError)
    painters.register("paint", paint)
    painters.register("paint", paint)
    with pytest.raises(ValueError, match="already registered by .*paint"):
        painters.register("paint", other)


def test_a_name_must_be_a_non_empty_string():
    with pytest.raises(ValueError, match="non-empty name"):
        make().register(" ", 4)
