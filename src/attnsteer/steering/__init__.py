"""The steering core: the bias, the steered attention functions, and the one way to activate them.

`steering.methods`: the steering methods by name (pasta, instaboost, spotlight). `prepare_state` +
`steered` steer a block of model calls; `reading_attention` reads attention
probabilities; `install` puts the steered attention on a model once (`load_model` does it).
Names load lazily (`attnsteer.lazy`): `attnsteer.steering.config` imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnsteer.lazy import lazy_exports

_EXPORTS = {
    "RowSteering": "attnsteer.steering.config", "SteeringConfig": "attnsteer.steering.config",
    "SpotlightTarget": "attnsteer.steering.config", "SteeringMethod": "attnsteer.steering.methods",
    "make_method": "attnsteer.steering.methods", "steering_method_names": "attnsteer.steering.methods",
    "SteeringMode": "attnsteer.steering.config", "SteeringState": "attnsteer.steering.state",
    "active_state": "attnsteer.steering.state", "install": "attnsteer.steering.installation",
    "installed": "attnsteer.steering.installation", "uninstall": "attnsteer.steering.installation",
    "prepare_state": "attnsteer.steering.activation", "reading_attention": "attnsteer.steering.activation",
    "steered": "attnsteer.steering.activation",
}
__all__ = ["RowSteering", "SpotlightTarget", "SteeringConfig", "SteeringMethod", "SteeringMode", "SteeringState",
    "active_state", "install", "installed", "make_method", "prepare_state", "reading_attention", "steered",
    "steering_method_names", "uninstall"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from attnsteer.steering.activation import prepare_state, reading_attention, steered
    from attnsteer.steering.config import RowSteering, SpotlightTarget, SteeringConfig, SteeringMode
    from attnsteer.steering.installation import install, installed, uninstall
    from attnsteer.steering.methods import SteeringMethod, make_method, steering_method_names
    from attnsteer.steering.state import SteeringState, active_state
