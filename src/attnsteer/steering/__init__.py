"""The steering core: the bias, the steered attention functions, and the one way to activate them.

`prepare_state` + `steered` steer a block of model calls; `reading_attention` reads attention
probabilities; `install` puts the steered attention on a model once (`load_model` does it).
"""

from attnsteer.steering.activation import prepare_state, reading_attention, steered
from attnsteer.steering.config import RowSteering, SteeringConfig, SteeringMode
from attnsteer.steering.install import install, installed, uninstall
from attnsteer.steering.state import SteeringState, active_state

__all__ = [
    "RowSteering", "SteeringConfig", "SteeringMode", "SteeringState", "active_state", "install", "installed",
    "prepare_state", "reading_attention", "steered", "uninstall",
]
