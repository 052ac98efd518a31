"""Parsing of option values the CLI's subcommands share (no model, no torch)."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated

import typer

from attnsteer.errors import AttnsteerError

ModelOption = Annotated[str | None, typer.Option(
    "--model", help="An embedded model (gemma-3-270m-q4_k_m, the default; smollm2-135m-instruct, a chat model), "
    "a model directory or a hub id.")]
"""The `--model` option every command that loads a model takes."""

ChatOption = Annotated[str, typer.Option(
    "--chat", help="Prompts through the model's chat template: auto (when the tokenizer has one), on "
    "(a plain System/User/Assistant template for a model without one) or off.")]
"""The `--chat` option of `eval`, `profile` and `ask` (`attnsteer.chat.resolve_chat`)."""


class OptionError(AttnsteerError):
    """A command-line option's value cannot be parsed, or does not go with the other options."""


def comma_separated(text: str, option: str, kind: type[int] | type[float] = float) -> list:
    """'0.01,0.5' -> [0.01, 0.5] (`kind` int or float); a bad item is an OptionError naming `option`."""
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        noun = "integers" if kind is int else "numbers"
        raise OptionError(f"{option} takes comma-separated {noun}, got {text!r}") from None


def check_heads(spec: str | None) -> None:
    """A --heads value that names a JSON file: read and check the file now, before any model loads
    (`heads.read_head_file`); lists and 'all' are checked against the model's shape once it is loaded."""
    if spec is not None and spec.endswith(".json"):
        from attnsteer.heads import read_head_file

        read_head_file(spec)


def check_chat(mode: str) -> str:
    """A --chat value, checked before any model loads."""
    from attnsteer.chat import CHAT_MODES

    if mode not in CHAT_MODES:
        raise OptionError(f"--chat takes one of {', '.join(CHAT_MODES)}, got {mode!r}")
    return mode


def command_line() -> str:
    """This process's command as `attnsteer <arguments>`, shell-quoted (provenance in written files)."""
    return shlex.join(["attnsteer", *sys.argv[1:]])
