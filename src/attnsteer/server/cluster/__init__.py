"""Served replicas on Ray Serve, with context affinity (the `cluster` extra: `pip install 'attnsteer[cluster]'`).

N replicas of one model, each the single process's app (`create_app`), behind Ray Serve's HTTP proxy; a
request that reuses a context goes to the replica holding that context's steered prefix cache.

Routing design (Ray Serve 2.60). Ray lets a deployment name a custom request router
(`RequestRouterConfig(request_router_class=...)`, `ray.serve.request_router.RequestRouter`), which picks a
replica for each call of any handle to it. But the HTTP proxy calls the ingress deployment before the body is
read (the replica pulls the body from the proxy afterwards), so a router on the ingress sees no prompt; Ray's
prefix-aware router (`ray.serve.llm`) works on the parsed request objects of its own LLM ingress for the same
reason. Hence two deployments:

- `AffinityFront`, the ingress (no model): reads the body, computes `affinity.affinity_key` (a hash of the
  model, the prompt's first 256 characters, the emphasis there and the steering) and calls the model
  deployment's `forward(request, affinity_key=key)`;
- `SteeredReplica` x N: its router, `router.ContextAffinityRouter`, ranks the replicas for the key by rendezvous
  hashing over their Serve ranks; the first takes the request unless it is dead or full. Every front (and
  every machine) computes the same ranking, with no shared state; when a replica dies only its keys move, and
  its replacement (which inherits its rank) takes them back.

The replica runs the request through the same FastAPI app as one process (`bridge.call_app`), so errors, 429
back-pressure and streaming are the single process's; the front adds what only a cluster has (a dead
replica: 503 `replica_unavailable` with Retry-After; `/health` over all replicas). Nothing here is imported
unless replicas are asked for; `affinity` and `bridge` need no Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnsteer.lazy import lazy_exports

_EXPORTS = {
    "affinity_key": "attnsteer.server.cluster.affinity",
    "rank_replicas": "attnsteer.server.cluster.affinity",
    "ContextAffinityRouter": "attnsteer.server.cluster.router",
    "ReplicaSpec": "attnsteer.server.cluster.deployments",
    "build_app": "attnsteer.server.cluster.deployments",
    "serve_replicas": "attnsteer.server.cluster.launch",
}
__all__ = ["ContextAffinityRouter", "ReplicaSpec", "affinity_key", "build_app", "rank_replicas", "serve_replicas"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from attnsteer.server.cluster.affinity import affinity_key, rank_replicas
    from attnsteer.server.cluster.deployments import ReplicaSpec, build_app
    from attnsteer.server.cluster.launch import serve_replicas
    from attnsteer.server.cluster.router import ContextAffinityRouter
