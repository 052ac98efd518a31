"""`attnsteer profile`: find which heads to steer for a model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from attnsteer.cli.main import app, exits_2_on_bad_input, start_ranks
from attnsteer.cli.options import (
    ChatOption,
    DeviceMapOption,
    MaxMemoryOption,
    ModelOption,
    OffloadFolderOption,
    placement_options,
)
from attnsteer.distributed import is_main


@app.command("profile")
@exits_2_on_bad_input
def profile_command(
    tasks: Annotated[str, typer.Option(help="Tasks to profile, comma-separated.")]
    = "counterfact,biasbios,json_format,pronoun_change",
    n_train: Annotated[int, typer.Option(help="Train examples per task (fewer if the split is smaller).")] = 50,
    method: Annotated[str, typer.Option(help="exhaustive (each head alone), coarse-to-fine (layers, then the "
                                        "heads of the best layers) or gradient (first order, one backward).")]
    = "exhaustive",
    select: Annotated[str, typer.Option(help="Combine the tasks' top-k: intersection, union or task.")]
    = "intersection",
    select_task: Annotated[str | None, typer.Option(help="With --select task: which task's top-k.")] = None,
    top_k: Annotated[int | None, typer.Option(help="k per task (default: chosen on the valid split).")] = None,
    num_heads: Annotated[int | None, typer.Option(help="Select this many heads instead of a k.")] = None,
    k_grid: Annotated[str, typer.Option(help="Candidate k values when k is chosen on the valid split.")]
    = "2,4,8,12,16,24,32",
    n_valid: Annotated[int, typer.Option(help="Valid examples per task for choosing k.")] = 20,
    top_layers: Annotated[int, typer.Option(help="coarse-to-fine: how many best layers get per-head scores.")] = 3,
    alpha: Annotated[float, typer.Option(help="Steering strength while profiling, in (0, 1].")] = 0.01,
    out: Annotated[str | None, typer.Option(help="Write the selected heads here (JSON, PASTA format + model).")]
    = None,
    scores: Annotated[str | None, typer.Option(help="Write every task's layers x heads scores here (JSON).")]
    = None,
    plot: Annotated[str | None, typer.Option(help="Write Figure 2-style plots (PNG) to this folder.")] = None,
    install: Annotated[bool, typer.Option(help="Make the selected heads this model's default: `Steerer(model, "
                       "tok)`, the CLI and the server then steer them with PASTA (kept under $ATTNSTEER_CACHE/heads, "
                       "found by model identity and shape).")] = False,
    model: ModelOption = None,
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    chat: ChatOption = "auto",
    from_scores: Annotated[str | None, typer.Option(help="Select again from a --scores file of an earlier run on "
                           "this model (no scoring; --select, --top-k, --k-grid, --num-heads apply).")] = None,
) -> None:
    """Rank every attention head on small task subsets and select the heads to steer (PASTA profiling)."""
    from attnsteer.chat import resolve_chat
    from attnsteer.cli.options import check_chat, comma_separated, command_line
    from attnsteer.profiling.config import ProfileConfig
    from attnsteer.steering.config import SteeringConfig

    # Everything that needs no model is checked before the (slow) load.
    config = ProfileConfig(
        tasks=tuple(name.strip() for name in tasks.split(",") if name.strip()), n_train=n_train, method=method,
        select=select, top_k=top_k, num_heads=num_heads, select_task=select_task,
        k_grid=tuple(comma_separated(k_grid, "--k-grid", int)), n_valid=n_valid,
        steering=SteeringConfig(alpha=alpha), top_layers=top_layers,
    )
    check_chat(chat)
    earlier = _read_json(from_scores) if from_scores else None
    from attnsteer.models import load_model
    from attnsteer.profiling import profile_heads
    from attnsteer.profiling.profile import read_profiles

    loaded, tokenizer = load_model(model, **placement_options(device_map, max_memory, offload_folder))
    start_ranks(loaded)
    config = replace(config, chat=resolve_chat(chat, tokenizer))
    profiles = None
    if earlier is not None:
        scored_with, profiles = read_profiles(earlier, loaded)
        config = replace(config, method=scored_with, tasks=tuple(profiles))

    def save_scores(result) -> None:  # before selection, so a failed selection keeps the scores
        if scores and is_main():
            _write(scores, result.scores_file())

    result = profile_heads(loaded, tokenizer, config, on_profiled=save_scores, command=command_line(),
                           profiles=profiles)
    if not is_main():
        return  # rank 0 alone prints and writes
    for name, profile in result.profiles.items():
        best = ", ".join(f"{layer}.{head}" for layer, head in profile.ranking()[:8])
        typer.echo(f"{name}: {profile.num_items} items ({len(profile.skipped)} skipped), {profile.seconds:.0f} s; "
                   f"best heads: {best}")
    if result.k_values:
        typer.echo("valid objective by k: " + ", ".join(f"k={k}: {v:.3f}" for k, v in result.k_values.items()))
    typer.echo(f"selected ({result.rule}, k={result.k}): {result.heads}  [{result.heads.num_heads_steered} heads, "
               f"{result.seconds:.0f} s]")
    if out:
        _write(out, result.head_file())
    if install:
        from attnsteer.heads.defaults import install_head_set

        typer.echo(f"installed as this model's default head set: {install_head_set(result.head_file())}", err=True)
    if scores:
        _write(scores, result.scores_file())
    if plot:
        from attnsteer.plots.profiling import plot_profile

        written = plot_profile(result.profiles, plot)
        typer.echo("wrote " + ", ".join(str(path) for path in written), err=True)


def _read_json(path: str) -> dict:
    from attnsteer.cli.options import OptionError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise OptionError(f"--from-scores: cannot read {path}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict) or "method" not in data:
        raise OptionError(f"--from-scores: {path} is not a scores file written by `attnsteer profile --scores`")
    return data


def _write(path: str, content: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(content, indent=1) + "\n")
    typer.echo(f"wrote {path}", err=True)
