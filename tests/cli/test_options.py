"""The option parsing shared by the subcommands."""

from __future__ import annotations

import sys

import pytest

from attnsteer.cli.options import OptionError, comma_separated, command_line
from attnsteer.errors import AttnsteerError


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
