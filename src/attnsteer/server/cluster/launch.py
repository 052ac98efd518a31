"""`attnsteer serve --replicas N`: a local Ray cluster on this machine serving N model replicas.

`ray.init` with this machine's CPUs (never fewer than N), Serve's HTTP proxy on --host / --port, and
`build_app` with each replica given an equal share of the CPUs; then it waits for SIGINT / SIGTERM and
shuts Serve and Ray down (replicas end their open requests with 503, as one process does).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from attnsteer.errors import AttnsteerError

if TYPE_CHECKING:
    from attnsteer.server.cluster.deployments import ReplicaSpec
    from attnsteer.server.settings import ServerSettings

APP_NAME = "attnsteer"
INSTALL_HINT = "pip install 'attnsteer[cluster]'"


class ClusterUnavailableError(AttnsteerError):
    """Ray Serve is not installed (the `cluster` extra)."""


def check_ray() -> None:
    """Raise ClusterUnavailableError, one line naming the extra, when `ray[serve]` cannot be imported."""
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as error:
        raise ClusterUnavailableError(f"--replicas needs Ray Serve: {INSTALL_HINT} ({error})") from None


def start_cluster(spec: ReplicaSpec, replicas: int, host: str, port: int, num_cpus: int | None = None,
                  routing: str = "affinity") -> None:
    """Start a local Ray (`num_cpus`, default this machine's; a Ray already initialised in this process is used
    as it is) and serve `replicas` replicas of `spec` on host:port; returns once the application is running."""
    import ray
    from ray import serve

    from attnsteer.server.cluster.deployments import build_app

    cpus = num_cpus or max(os.cpu_count() or 1, replicas)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=cpus, include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    app = build_app(spec, replicas, routing=routing, ray_actor_options={"num_cpus": cpus / replicas})
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)


def stop_cluster() -> None:
    """Shut Serve (replicas drain with 503) and the local Ray down."""
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def serve_replicas(model: str | None, steering: dict[str, Any], settings: ServerSettings, replicas: int,
                   host: str, port: int) -> None:
    """Serve `replicas` replicas of `model` (steered by default with `steering`, `Steerer` keyword arguments)
    until SIGINT / SIGTERM; ClusterUnavailableError first when Ray Serve is not installed."""
    check_ray()
    from attnsteer.models.loading import embedded_identity, model_source
    from attnsteer.server.cluster.deployments import ReplicaSpec

    if not embedded_identity(model):
        model_source(model)  # a missing directory: one line now, not a replica failing three times

    spec, stop = ReplicaSpec(model, steering, settings), threading.Event()
    try:
        start_cluster(spec, replicas, host, port)
        for signum in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs handlers of its own
            signal.signal(signum, lambda *_: stop.set())
        print(f"attnsteer: serving {spec.model or 'embedded'} with {replicas} replicas on Ray Serve at "
              f"http://{host}:{port}/ (context affinity; GET /health for every replica)", file=sys.stderr)
        stop.wait()
    finally:
        stop_cluster()
