"""attnsteer: tell a language model where to attend (PASTA attention steering)."""

from attnsteer.errors import AttnsteerError
from attnsteer.heads import HeadConfig
from attnsteer.models import load_model
from attnsteer.steerer import Steerer
from attnsteer.steering import SteeringConfig, steering

__all__ = ["AttnsteerError", "HeadConfig", "Steerer", "SteeringConfig", "load_model", "steering"]
__version__ = "0.1.0"
