"""Which attention heads to steer: `HeadConfig`, head files, the shipped default sets and installed ones.

Pure Python: nothing here imports torch or transformers.
"""

from attnsteer.heads.defaults import default_heads, heads_for_model, install_head_set, shipped_head_sets
from attnsteer.heads.head_config import HeadConfig, HeadSpec
from attnsteer.heads.head_file import HeadFile, read_head_file

__all__ = ["HeadConfig", "HeadFile", "HeadSpec", "default_heads", "heads_for_model", "install_head_set",
           "read_head_file", "shipped_head_sets"]
