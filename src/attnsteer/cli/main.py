"""The `attnsteer` command. Subcommands only parse arguments into configs and call the library."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any

import typer

from attnsteer.cli.options import (
    AlphaOption,
    BoostOption,
    ChatOption,
    DeviceMapOption,
    GranularityOption,
    HeadsOption,
    MaxMemoryOption,
    ModelOption,
    ModeOption,
    OffloadFolderOption,
    OptionError,
    SteeringOption,
    TargetOption,
    check_chat,
    check_heads,
    check_steering,
    comma_separated,
    command_line,
    placement_options,
)
from attnsteer.distributed import is_main
from attnsteer.errors import AttnsteerError, NoEmphasisError

if TYPE_CHECKING:
    from attnsteer.heads import HeadConfig
    from attnsteer.steering.methods import SteeringMethod

app = typer.Typer(help="Tell a language model where to attend (PASTA attention steering).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def root() -> None:
    """Tell a language model where to attend (PASTA attention steering)."""


def exits_2_on_bad_input(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print bad-input errors as one line on stderr and exit with status 2 (no traceback).

    Every command checks what needs no model first and imports `load_model` only after that, so bad
    input is reported before a model loads; the cli modules themselves import no torch or transformers.
    """

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
    steering: SteeringOption = None,
    heads: HeadsOption = None,
    alpha: AlphaOption = None,
    mode: ModeOption = None,
    boost: BoostOption = None,
    target: TargetOption = None,
    granularity: GranularityOption = None,
    occurrence: Annotated[str, typer.Option(help="Emphasise the first occurrence of each --emphasize "
                          "text, or all of them.")] = "first",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 20,
    compare: Annotated[bool, typer.Option("--compare", help="Also run the plain model and show both.")] = False,
    model: ModelOption = None,
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
) -> None:
    """Generate a continuation with the emphasised text steered (greedy decoding)."""
    from attnsteer.spans import resolve_emphasis

    emphasis = [list(emphasize)] if emphasize else None
    # Check what needs no model before the (slow) load.
    steering_options = check_steering(steering, heads=heads, alpha=alpha, mode=mode, boost=boost, target=target,
                                      granularity=granularity)
    marked = resolve_emphasis(prompt, emphasis[0] if emphasis else None, occurrence=occurrence)  # type: ignore[arg-type]
    if not marked.spans:
        raise NoEmphasisError("nothing is emphasised: mark text in the prompt with **...** or pass --emphasize TEXT")
    from attnsteer.models import load_model
    from attnsteer.steerer import Steerer

    loaded, tokenizer = load_model(model, **placement_options(device_map, max_memory, offload_folder))
    steerer = Steerer(loaded, tokenizer, occurrence=occurrence, **steering_options)  # type: ignore[arg-type]
    steered = steerer.generate(prompt, emphasize=emphasis, max_new_tokens=max_new_tokens)
    if not compare:
        typer.echo(steered)
        return
    plain = steerer.generate(prompt, emphasize=emphasis, max_new_tokens=max_new_tokens, steer=False)
    print_comparison(plain, steered, describe_steering(steerer.method))


@app.command()
@exits_2_on_bad_input
def chat(
    user: Annotated[str, typer.Option(help="The user message; mark emphasis inline with **...**.")],
    system: Annotated[str | None, typer.Option(help="A system message first (emphasis as in --user).")] = None,
    emphasize: Annotated[list[str] | None, typer.Option("--emphasize", "-e", help="A substring to emphasise "
                         "(its first occurrence, system message first; repeatable).")] = None,
    steering: SteeringOption = None,
    heads: HeadsOption = None,
    alpha: AlphaOption = None,
    mode: ModeOption = None,
    boost: BoostOption = None,
    target: TargetOption = None,
    granularity: GranularityOption = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 64,
    compare: Annotated[bool, typer.Option("--compare", help="Also run the plain model and show both.")] = False,
    model: ModelOption = None,
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
) -> None:
    """Reply to a chat (the model's chat template; a plain User/Assistant one for base models), steered."""
    from attnsteer.chat import add_substrings
    from attnsteer.spans import resolve_emphasis

    messages = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": user}]
    steering_options = check_steering(steering, heads=heads, alpha=alpha, mode=mode, boost=boost, target=target,
                                      granularity=granularity)
    contents = add_substrings([resolve_emphasis(m["content"]) for m in messages], emphasize or [])
    if not any(item.spans for item in contents):
        raise NoEmphasisError("nothing is emphasised: mark text in a message with **...** or pass --emphasize TEXT")
    from attnsteer.models import load_model
    from attnsteer.steerer import Steerer

    loaded, tokenizer = load_model(model, **placement_options(device_map, max_memory, offload_folder))
    steerer = Steerer(loaded, tokenizer, **steering_options)
    options = {"max_new_tokens": max_new_tokens, "substrings": emphasize or []}
    steered = steerer.chat(messages, **options)
    if not compare:
        typer.echo(steered)
        return
    plain = steerer.chat(messages, steer=False, **options)
    print_comparison(plain, steered, describe_steering(steerer.method))


@app.command("eval")
@exits_2_on_bad_input
def eval_command(
    task: Annotated[str, typer.Option(help="Task(s), comma-separated: counterfact, biasbios, json_format, "
                                      "pronoun_change, squad, gsm8k.")],
    method: Annotated[str, typer.Option(help="Method(s): zero-shot, marked (both variants), marked-star, "
                                        "marked-quote, few-shot, pasta, few-shot+pasta, all (those six); "
                                        "autopasta, llmsteer (squad, gsm8k); instaboost, spotlight, spa (PASTA's "
                                        "prompt, steered or anchored by that method).")] = "zero-shot,pasta",
    heads: Annotated[str | None, typer.Option(help="Heads to steer (default: the model's set); with "
                     "--num-heads, a ranked 'L.H,...' list or JSON list.")] = None,
    alpha: Annotated[str, typer.Option(help="alpha, or several (comma-separated) for a sweep.")] = "0.01",
    mode: Annotated[str, typer.Option(help="exclude (down-weight the rest) or include (up-weight the span).")]
    = "exclude",
    num_heads: Annotated[str | None, typer.Option(help="Sweep: top-n heads of the ranked --heads list, "
                         "e.g. 1,2,4,8.")] = None,
    boost: Annotated[str | None, typer.Option(help="instaboost: factor on attention to the emphasised tokens, "
                     ">= 1 (default: instaboost's), or several (comma-separated) for a sweep.")] = None,
    target: Annotated[str | None, typer.Option(help="spotlight: share of attention the span is raised to, in "
                      "(0, 1) (default: spotlight's), or several (comma-separated) for a sweep.")] = None,
    granularity: Annotated[str | None, typer.Option(help="spotlight: layer (a layer's average share, the "
                           "reference rule) or head (each head's; default: spotlight's).")] = None,
    spa_strength: Annotated[str | None, typer.Option(help="spa: anchoring strength (1: no effect; default: the "
                            "anchoring package's), or several (comma-separated) for a sweep.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N examples per task.")] = None,
    split: Annotated[str, typer.Option(help="train, valid or test.")] = "test",
    k_shot: Annotated[int, typer.Option(min=1, help="Demonstrations for the few-shot methods.")] = 2,
    batch_size: Annotated[int, typer.Option(min=1, help="Generation batch size.")] = 8,
    data: Annotated[str | None, typer.Option(help="Your own data file in the task's format (one task).")] = None,
    model: ModelOption = None,
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    chat: ChatOption = "auto",
    top_fraction: Annotated[float, typer.Option(help="llmsteer: emphasise this fraction of each context's tokens "
                            "(LLMSteer's k), in (0, 1].")] = 0.1,
    json_out: Annotated[str | None, typer.Option("--json", help="Write results + every prediction here.")] = None,
    plot: Annotated[str | None, typer.Option(help="Write PNG figures (and their numbers) to this folder.")] = None,
    markdown: Annotated[str | None, typer.Option(help="Write the table as Markdown (with this command).")] = None,
) -> None:
    """Evaluate methods on the PASTA paper's tasks and print the paper's Table 1 layout."""
    from attnsteer.cli.options import check_steering
    from attnsteer.context.config import LLMSteerConfig
    from attnsteer.evaluation.methods import expand_methods
    from attnsteer.evaluation.runner import check_evaluation
    from attnsteer.evaluation.spa import check_strength
    from attnsteer.steering.config import SteeringConfig

    # Everything that needs no model is checked before the (slow) load: names, numbers, files, and
    # whether each method fits each task's examples.
    tasks = [name.strip() for name in task.split(",") if name.strip()]
    if not tasks:
        raise OptionError(f"--task needs at least one task name, got {task!r}")
    methods = expand_methods(method.split(","))
    steering = [SteeringConfig(alpha=value, mode=mode) for value in comma_separated(alpha, "--alpha")]
    if not steering:
        raise OptionError(f"--alpha needs at least one number, got {alpha!r}")
    counts = comma_separated(num_heads, "--num-heads", int) if num_heads else []
    boosts = comma_separated(boost or "", "--boost")
    targets = comma_separated(target or "", "--target")
    for value in boosts:
        check_steering("instaboost", boost=value)  # each value's range, before the load
    for value in targets or [None]:
        check_steering("spotlight", target=value, granularity=granularity)
    strengths = [check_strength(value) for value in comma_separated(spa_strength or "", "--spa-strength")]
    if data and len(tasks) != 1:
        raise OptionError("--data goes with exactly one --task")
    given = {"boost": boosts, "target": targets, "granularity": granularity, "spa_strength": strengths}
    check_evaluation(tasks, methods, split=split, limit=limit, data_file=data, parameters=given,
                     spell=lambda name: "--" + name.replace("_", "-"))
    llmsteer = LLMSteerConfig(top_fraction=top_fraction)
    check_heads(heads)
    check_chat(chat)
    from attnsteer.chat import resolve_chat
    from attnsteer.evaluation import results_table, run_evaluation, steering_summary, write_json
    from attnsteer.models import load_model

    loaded, tokenizer = load_model(model, **placement_options(device_map, max_memory, offload_folder))
    world_size = start_ranks(loaded)
    templated = resolve_chat(chat, tokenizer)
    report = run_evaluation(loaded, tokenizer, tasks, methods, heads=heads, steering=steering, num_heads=counts,
                            **given, limit=limit, split=split, k_shot=k_shot, batch_size=batch_size,
                            data_file=data, chat=templated, llmsteer=llmsteer)
    if not is_main():
        return  # rank 0 alone prints and writes
    header, rows = results_table(report.results)
    print_table(header, rows, ", ".join(filter(None, [f"split {split}", steering_summary(report.results),
                                                      f"model {model or 'embedded'}",
                                                      "chat template" if templated else ""])))
    if json_out:
        write_json(report.results, json_out, {"world_size": world_size, "sweeps": report.sweeps_json(),
                                              "table": {"header": header, "rows": rows}})
    if plot:
        write_plots(plot, header, rows, report)
    if markdown:
        from pathlib import Path

        from attnsteer.evaluation import results_markdown

        Path(markdown).write_text(results_markdown(header, rows, f"Command: `{command_line()}`"))


def start_ranks(model: Any) -> int:
    """Under torchrun (or `accelerate launch`): start the process group for `model`'s device and say so on rank 0
    ("running on 2 ranks (gloo)"). Returns the number of ranks (1 without torchrun: nothing is started)."""
    from attnsteer.distributed import init_from_env, world

    backend = init_from_env(model.device)
    rank, size = world()
    if backend is not None and rank == 0:
        typer.echo(f"running on {size} ranks ({backend})", err=True)
    return size


def print_table(header: list[str], rows: list[list[str]], caption: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(caption=caption)
    for name in header:
        table.add_column(name.replace("/", "\n"), justify="left" if name == "method" else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(120, 14 * len(header))).print(table)


def write_plots(folder: str, header: list[str], rows: list[list[str]], report) -> None:
    import json
    from pathlib import Path

    from attnsteer.plots.evaluation import plot_methods, plot_sweep

    out = Path(folder)
    written = [plot_methods(header, rows, out / "methods.png")]
    for name, points in report.sweeps.items():  # alpha, num_heads, boost, target, spa_strength
        if points:
            written.append(plot_sweep(points, name, out / f"{name}_sweep.png", log_x=name in ("alpha", "boost")))
    numbers = {"table": {"header": header, "rows": rows}, **report.sweeps_json()}
    (out / "figures.json").write_text(json.dumps(numbers, indent=1) + "\n")
    typer.echo("wrote " + ", ".join(str(path) for path in written), err=True)


def describe_heads(heads: HeadConfig) -> str:
    """"heads 11.2,12.0" for a few heads; "270 heads in 30 layers" for many (a caption, not a listing)."""
    if heads.num_heads_steered <= 8:
        return f"heads {heads}"
    return f"{heads.num_heads_steered} heads in {len(heads.layers)} layers"


def describe_steering(method: SteeringMethod) -> str:
    """The comparison's caption: `method.describe()`, a long head set summarised by `describe_heads`
    ("pasta (270 heads in 30 layers, alpha 0.01, mode exclude)")."""
    heads = getattr(method, "heads", None)
    text = method.describe()
    return text if heads is None else text.replace(f"heads {heads}", describe_heads(heads))


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


# Commands that live in their own modules (cli/<name>.py): each does `@app.command(...)` when imported, so
# importing this module gives the complete `app`. One entry per module, added by the module's author.
SUBCOMMAND_MODULES: list[str] = ["ask", "serve", "profile"]
for _module in SUBCOMMAND_MODULES:
    importlib.import_module(f"attnsteer.cli.{_module}")


if __name__ == "__main__":
    # `python -m attnsteer.cli.main`: the subcommand modules registered on the importable module's `app`,
    # not on this `__main__` copy, so run that one.
    from attnsteer.cli.main import main as registered_main

    sys.exit(registered_main())
