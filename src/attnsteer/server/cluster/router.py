"""`ContextAffinityRouter`: Ray Serve's request router for the model replicas, keyed on the context.

Ray Serve 2.60 lets a deployment name its router (`RequestRouterConfig(request_router_class=...)`); every
handle to the deployment then asks it which replica takes each request. This one reads the `affinity_key`
keyword the front deployment passes with the call (`affinity.affinity_key`) and ranks the replicas for it by
rendezvous hashing (`affinity.rank_replicas`) over their slots: the first is the replica holding that
context's steered prefix cache; the next ones are taken only while it is unavailable (dead, restarting, or
at its `max_ongoing_requests`). Requests without a key go to the least loaded replica (Ray's own choice).

A replica's slot is its Serve rank (0 .. N-1, published by `SteeredReplica.record_replica_metadata`): Ray gives
a replacement the rank of the replica it replaces, so after a crash exactly the dead replica's contexts go to
the newcomer and every other replica keeps its own (hashing the replicas' unique ids instead would move about
half of all contexts to the newcomer's cold cache). A replica without a rank is its own slot (its unique id).

`policy="random"` (request_router_kwargs) ranks the replicas at random instead: the baseline that the
affinity router is measured against (`benchmarks/ray_affinity.py`).
"""

from __future__ import annotations

import random

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from attnsteer.server.cluster.affinity import rank_replicas

POLICIES = ("affinity", "random")


class ContextAffinityRouter(RequestRouter):
    """Routes a request with an `affinity_key` keyword to the replica that key hashes to (see the module)."""

    def initialize_state(self, policy: str = "affinity", **kwargs) -> None:
        """policy: "affinity" (the default) or "random" (the baseline). Called by Ray with the deployment's
        `request_router_kwargs`."""
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self._policy = policy

    async def choose_replicas(self, candidate_replicas: list[RunningReplica],
                              pending_request: PendingRequest | None = None) -> list[list[RunningReplica]]:
        """Ranks of replicas, most preferred first: one replica per rank for a keyed request, so the next one
        is tried only when the first cannot take it."""
        if not candidate_replicas:
            return []
        key = pending_request.kwargs.get("affinity_key") if pending_request is not None else None
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # after every rank was tried: back off, retry
        if key is None:
            return [candidate_replicas]
        if getattr(self, "_policy", "affinity") == "random":
            return [[replica] for replica in random.sample(candidate_replicas, len(candidate_replicas))]
        by_slot: dict[str, list[RunningReplica]] = {}
        for replica in sorted(candidate_replicas, key=lambda replica: replica.replica_id.unique_id):
            by_slot.setdefault(slot_of(replica), []).append(replica)
        return [[replica] for slot in rank_replicas(key, by_slot) for replica in by_slot[slot]]


def slot_of(replica: RunningReplica) -> str:
    """What the ranking hashes for `replica`: "rank <n>" when it published its Serve rank, else its unique id."""
    rank = replica.replica_metadata.get("rank")
    return f"rank {rank}" if isinstance(rank, int) else replica.replica_id.unique_id
