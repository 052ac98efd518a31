"""The steering core: the bias, the steered attention functions, and the context manager."""

from attnsteer.steering.config import SteeringConfig, SteeringMode
from attnsteer.steering.context import steering
from attnsteer.steering.install import install, installed, uninstall
from attnsteer.steering.state import SteeringState, active_state

__all__ = [
    "SteeringConfig", "SteeringMode", "SteeringState", "active_state", "install", "installed", "steering", "uninstall",
]
