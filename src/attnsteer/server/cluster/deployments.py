"""The two Ray Serve deployments of a cluster and `build_app`, which binds them into one application.

- `SteeredReplica` (N of them, or autoscaled): one model each, loaded inside the replica (`load_model` on the
  replica's GPU when Ray gave it one), serving the single process's app (`create_app`) in-process through
  `bridge.call_app`; its router is `ContextAffinityRouter`, so a reused context meets its steered cache.
- `AffinityFront` (the HTTP ingress, no model, light): reads each request, computes its affinity key and
  forwards it (`front.front_app`); `GET /health` aggregates the replicas'.

Every reply carries `x-attnsteer-replica` naming the replica that answered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import serve
from ray.serve import Application
from ray.serve.config import RequestRouterConfig
from ray.serve.handle import DeploymentHandle

from attnsteer.server.cluster.bridge import ForwardedRequest, ResponseStart, call_app
from attnsteer.server.cluster.front import front_app
from attnsteer.server.cluster.router import POLICIES, ContextAffinityRouter
from attnsteer.server.settings import ServerSettings

REPLICA_HEADER = "x-attnsteer-replica"
ONGOING_HEADROOM = 16  # requests beyond the replica's rows: /health, /v1/models, the playground's GETs
# The front only forwards: Ray's default limit (5 requests at a time per replica) would queue requests in the
# proxy, hiding the model replicas' own back-pressure (429), so its limit is far above what replicas admit.
FRONT_MAX_ONGOING = 4096


@dataclass(frozen=True)
class ReplicaSpec:
    """What every replica serves. model: `load_model`'s name or path (None: the embedded model). steering: the
    `Steerer` keyword arguments of the default steering (what `cli.options.check_steering` returns).
    settings: the server's limits and batching, one copy per replica."""

    model: str | None = None
    steering: dict[str, Any] = field(default_factory=dict)
    settings: ServerSettings = field(default_factory=ServerSettings)


# On shutdown a replica polls every 0.5 s for its open requests and gives them 5 s before `__del__` ends them
# with 503; a model that cannot load fails the deployment after 3 tries (Ray's default is 20).
@serve.deployment(graceful_shutdown_wait_loop_s=0.5, graceful_shutdown_timeout_s=5, max_constructor_retry_count=3)
class SteeredReplica:
    """One model and the single-process app over it (see the module docstring)."""

    def __init__(self, spec: ReplicaSpec) -> None:
        from attnsteer.models import load_model
        from attnsteer.server.app import create_app
        from attnsteer.steerer import Steerer

        model, tokenizer = load_model(spec.model, device="cuda" if ray.get_gpu_ids() else "cpu")
        self.app = create_app(Steerer(model, tokenizer, **spec.steering), spec.settings)
        context = serve.get_replica_context()
        self.replica_id, self.rank = context.replica_id.unique_id, getattr(context.rank, "rank", None)

    def record_replica_metadata(self) -> dict[str, Any]:
        """Read once by Ray when the replica is ready and handed to every router: the replica's rank, which
        `ContextAffinityRouter` hashes (a replacement replica inherits it, and with it the contexts)."""
        return {"rank": self.rank}

    async def forward(self, request: ForwardedRequest, affinity_key: str | None = None) -> AsyncIterator[Any]:
        """The app's response to `request`: a ResponseStart naming this replica, then the body's chunks.
        affinity_key: read by the router only."""
        async for piece in call_app(self.app, request):
            if isinstance(piece, ResponseStart):
                piece = ResponseStart(piece.status, (*piece.headers, (REPLICA_HEADER, self.replica_id)))
            yield piece

    async def health(self) -> dict[str, Any]:
        """The app's /health, plus `replica` (this replica's id) and `rank` (its slot in the routing)."""
        chunks = [piece async for piece in call_app(self.app, ForwardedRequest("GET", "/health"))
                  if isinstance(piece, bytes)]
        return {**json.loads(b"".join(chunks)), "replica": self.replica_id, "rank": self.rank}

    def __del__(self) -> None:
        """Ray's graceful shutdown: open requests end with 503 now, as on SIGTERM in one process."""
        app = getattr(self, "app", None)
        if app is not None:
            app.state.core.shut_down()


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=FRONT_MAX_ONGOING,
                  graceful_shutdown_wait_loop_s=0.5)
@serve.ingress()
class AffinityFront:
    """The HTTP ingress: affinity keys and forwarding (`front.front_app`)."""

    def __init__(self, replicas: DeploymentHandle, max_body_bytes: int) -> None:
        self.replicas, self.max_body_bytes = replicas, max_body_bytes

    def __serve_build_asgi_app__(self):
        return front_app(self.replicas, self.max_body_bytes)


def build_app(spec: ReplicaSpec, num_replicas: int = 2, *, routing: str = "affinity",
              ray_actor_options: dict[str, Any] | None = None, autoscaling_config: dict[str, Any] | None = None,
              front_replicas: int = 1) -> Application:
    """The application for `serve.run`: `num_replicas` model replicas (or `autoscaling_config`, Ray's dict:
    min_replicas, max_replicas, target_ongoing_requests, ...) behind `front_replicas` fronts.

    routing: "affinity" or "random" (the baseline). ray_actor_options: per model replica, e.g.
    {"num_cpus": 4} or {"num_gpus": 1} (the model then loads on that GPU). Each replica admits
    max_batch + max_waiting rows and answers 429 beyond, as one process does; Ray's own limit per replica
    (`max_ongoing_requests`) is set above that so it never queues what the replica would take.
    """
    if routing not in POLICIES:
        raise ValueError(f"routing must be one of {POLICIES}, got {routing!r}")
    scale: dict[str, Any] = {"autoscaling_config": autoscaling_config} if autoscaling_config else \
        {"num_replicas": num_replicas}
    settings = spec.settings
    replicas = SteeredReplica.options(
        **scale, ray_actor_options=ray_actor_options or {"num_cpus": 1},
        max_ongoing_requests=settings.max_batch + settings.max_waiting + ONGOING_HEADROOM,
        request_router_config=RequestRouterConfig(request_router_class=ContextAffinityRouter,
                                                  request_router_kwargs={"policy": routing}),
    ).bind(spec)
    return AffinityFront.options(num_replicas=front_replicas).bind(replicas, settings.max_body_bytes)


def app_builder(args: dict[str, Any]) -> Application:
    """For `serve run` and Serve config files (`import_path: attnsteer.server.cluster.deployments:app_builder`):
    args model, steering (dict), settings (ServerSettings fields), replicas, routing. Scaling and resources
    are best set in the config's `deployments:` entry for `SteeredReplica` (num_replicas or autoscaling_config,
    ray_actor_options)."""
    unknown = set(args) - {"model", "steering", "settings", "replicas", "routing"}
    if unknown:
        raise ValueError(f"unknown app_builder args {sorted(unknown)}; give model, steering, settings, replicas, "
                         "routing")
    spec = ReplicaSpec(args.get("model"), dict(args.get("steering") or {}),
                       ServerSettings(**(args.get("settings") or {})))
    return build_app(spec, int(args.get("replicas", 2)), routing=args.get("routing", "affinity"))

