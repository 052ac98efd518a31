"""The option parsing shared by the subcommands."""

from __future__ import annotations

import sys

import pytest

from attnsteer.cli.options import OptionError, check_steering, comma_separated, command_line
from attnsteer.errors import AttnsteerError, SteeringConfigError, UnknownSteeringMethodError


def test_comma_separated_numbers_and_integers():
    assert comma_separated("0.01, 0.5,", "--alpha") == [0.01, 0.5]
    assert comma_separated("2,4,8", "--k-grid", int) == [2, 4, 8]
    with pytest.raises(OptionError, match="--k-grid takes comma-separated integers, got '2,4.5'"):
        comma_separated("2,4.5", "--k-grid", int)
    with pytest.raises(AttnsteerError, match="--alpha takes comma-separated numbers, got 'a'"):
        comma_separated("a", "--alpha")


def test_command_line_is_shell_quoted(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/attnsteer", "profile", "--tasks", "a b"])
    assert command_line() == "attnsteer profile --tasks 'a b'"


def test_check_steering_gives_the_steerer_arguments():
    assert check_steering(None) == {}  # the Steerer's default
    assert check_steering("spotlight", target=0.3, granularity="head", boost=None) == {
        "method": "spotlight", "target": 0.3, "granularity": "head"}
    assert check_steering(None, boost=2.0) == {"method": "instaboost", "boost": 2.0}
    assert check_steering(None, heads="all", alpha=0.2) == {"method": "pasta", "heads": "all", "alpha": 0.2}


def test_check_steering_names_parameters_as_the_caller_spells_them():
    with pytest.raises(UnknownSteeringMethodError, match="did you mean 'instaboost'"):
        check_steering("instaboots")
    with pytest.raises(SteeringConfigError, match="^alpha is not a parameter of steering method 'instaboost'; its "
                       "parameters: boost$"):
        check_steering("instaboost", spell=str, alpha=0.5)
    with pytest.raises(SteeringConfigError, match="choose one with method$"):
        check_steering(None, spell=str, alpha=0.5, target=0.3)
