"""`attnsteer serve`: the OpenAI-compatible server with emphasis, and the playground at /."""

from __future__ import annotations

from typing import Annotated

import typer

from attnsteer.cli.main import app, exits_2_on_bad_input
from attnsteer.cli.options import (
    AlphaOption,
    BoostOption,
    DeviceMapOption,
    GranularityOption,
    HeadsOption,
    MaxMemoryOption,
    ModelOption,
    ModeOption,
    OffloadFolderOption,
    SteeringOption,
    TargetOption,
    check_steering,
    placement_options,
)


@app.command()
@exits_2_on_bad_input
def serve(
    model: ModelOption = None,
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    batching: Annotated[str, typer.Option(
        help="continuous: requests join the running batch between decode steps and leave when done; static: "
             "requests that arrive together are decoded together until the longest ends.")] = "continuous",
    max_batch: Annotated[int, typer.Option(min=1, help="Rows decoded together in one batch.")] = 8,
    prefix_cache_bytes: Annotated[int, typer.Option(
        min=0, help="Budget of the steered prefix cache (bytes of keys and values; 0: off; continuous batching "
                    "only).")] = 512 * 1024**2,
    max_waiting: Annotated[int, typer.Option(min=1, help="Rows that may wait; beyond it 429.")] = 64,
    max_prompt_tokens: Annotated[int, typer.Option(min=1, help="Longest prompt accepted (tokens).")] = 2048,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens one request may generate.")] = 256,
    steering: SteeringOption = None,
    heads: HeadsOption = None,
    alpha: AlphaOption = None,
    mode: ModeOption = None,
    boost: BoostOption = None,
    target: TargetOption = None,
    granularity: GranularityOption = None,
    model_name: Annotated[str | None, typer.Option(help="Id served at /v1/models (default: the model's).")] = None,
    replicas: Annotated[int, typer.Option(
        min=1, help="Model replicas; 2 or more serve on a local Ray cluster, routing requests that reuse a context "
                    "to the replica holding its steered cache (needs the cluster extra).")] = 1,
) -> None:
    """Serve /v1/completions and /v1/chat/completions (OpenAI-compatible, plus emphasis fields) and the playground.

    The steering options are the server's default: what a request that names no method (or only some of its
    method's parameters) is steered with.
    """
    steering_options = check_steering(steering, heads=heads, alpha=alpha, mode=mode, boost=boost, target=target,
                                      granularity=granularity)
    try:
        from attnsteer.server import ServerSettings, create_app
        from attnsteer.server.run import run_server
    except ImportError as error:
        typer.echo(f"error: the server needs its extra: pip install 'attnsteer[server]' ({error})", err=True)
        raise typer.Exit(2) from None
    from attnsteer.models import load_model
    from attnsteer.steerer import Steerer

    settings = ServerSettings(batching=batching, prefix_cache_bytes=prefix_cache_bytes, max_batch=max_batch,
                              max_waiting=max(max_waiting, max_batch),
                              max_prompt_tokens=max_prompt_tokens, max_tokens=max_tokens,
                              default_max_tokens=min(16, max_tokens), model_name=model_name)
    if replicas > 1:
        from attnsteer.server.cluster.launch import serve_replicas

        serve_replicas(model, steering_options, settings, replicas, host=host, port=port)
        return
    loaded, tokenizer = load_model(model, **placement_options(device_map, max_memory, offload_folder))
    steerer = Steerer(loaded, tokenizer, **steering_options)
    typer.echo(f"attnsteer: serving {model or 'embedded'} on http://{host}:{port}/ (playground at /), steering "
               f"with {steerer.method.describe()} by default", err=True)
    run_server(create_app(steerer, settings), host=host, port=port)
