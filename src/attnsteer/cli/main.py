"""The `attnsteer` command. Subcommands only parse arguments into configs and call the library."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer

from attnsteer.errors import AttnsteerError

app = typer.Typer(help="Tell a language model where to attend (PASTA attention steering).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def root() -> None:
    """Tell a language model where to attend (PASTA attention steering)."""


def exits_2_on_bad_input(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print bad-input errors as one line on stderr and exit with status 2 (no traceback)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AttnsteerError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@exits_2_on_bad_input
def generate(
    prompt: Annotated[str, typer.Argument(help="The prompt; mark emphasis inline with **...**.")],
    emphasize: Annotated[list[str] | None, typer.Option("--emphasize", "-e",
                         help="A substring of the prompt to emphasise (repeatable).")] = None,
    heads: Annotated[str | None, typer.Option(help="Heads to steer: a JSON file, 'all', layers '12,13' "
                     "or 'L.H' pairs '11.2,12.0'. Default: the model's shipped set.")] = None,
    alpha: Annotated[float, typer.Option(help="Factor on non-emphasised attention, in (0, 1].")] = 0.01,
    mode: Annotated[str, typer.Option(help="exclude (down-weight the rest) or include (up-weight the span).")]
    = "exclude",
    occurrence: Annotated[str, typer.Option(help="Emphasise the first occurrence of each --emphasize "
                          "text, or all of them.")] = "first",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 20,
    compare: Annotated[bool, typer.Option("--compare", help="Also run the plain model and show both.")] = False,
    model: Annotated[str | None, typer.Option(help="Model directory or hub id (default: embedded Gemma 3 270M).")]
    = None,
) -> None:
    """Generate a continuation with the emphasised text steered (greedy decoding)."""
    from attnsteer.spans import resolve_emphasis
    from attnsteer.steering.config import SteeringConfig

    emphasis = [list(emphasize)] if emphasize else None
    # Check what needs no model before the (slow) load.
    SteeringConfig(alpha=alpha, mode=mode)  # type: ignore[arg-type]
    resolve_emphasis(prompt, emphasis[0] if emphasis else None, occurrence=occurrence)  # type: ignore[arg-type]
    from attnsteer.models import load_model
    from attnsteer.steerer import Steerer

    loaded, tokenizer = load_model(model)
    steerer = Steerer(loaded, tokenizer, heads=heads, alpha=alpha, mode=mode,  # type: ignore[arg-type]
                      occurrence=occurrence)  # type: ignore[arg-type]
    steered = steerer.generate(prompt, emphasize=emphasis, max_new_tokens=max_new_tokens)
    if not compare:
        typer.echo(steered)
        return
    plain = steerer.generate(prompt, emphasize=emphasis, max_new_tokens=max_new_tokens, steer=False)
    print_comparison(plain, steered, f"heads {steerer.heads}, alpha {alpha}, {mode}")


def print_comparison(plain: str, steered: str, caption: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(caption=caption, show_lines=True)
    table.add_column("plain")
    table.add_column("steered")
    table.add_row(plain, steered)
    Console().print(table)


def main() -> None:
    app(prog_name="attnsteer")


if __name__ == "__main__":
    sys.exit(main())
