"""attnsteer: tell a language model where to attend (PASTA attention steering).

The public names are imported lazily, so `import attnsteer.spans` stays free of torch.
The low-level context manager is `attnsteer.steering.steering`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "AttnsteerError": "attnsteer.errors",
    "HeadConfig": "attnsteer.heads",
    "Steerer": "attnsteer.steerer",
    "SteeringConfig": "attnsteer.steering",
    "load_model": "attnsteer.models",
    "evaluate": "attnsteer.evaluation",
}
__all__ = ["AttnsteerError", "HeadConfig", "Steerer", "SteeringConfig", "evaluate", "load_model"]

if TYPE_CHECKING:
    from attnsteer.errors import AttnsteerError
    from attnsteer.evaluation import evaluate
    from attnsteer.heads import HeadConfig
    from attnsteer.models import load_model
    from attnsteer.steerer import Steerer
    from attnsteer.steering import SteeringConfig


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'attnsteer' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
