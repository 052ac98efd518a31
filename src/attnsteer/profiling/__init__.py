"""Head profiling: find which attention heads to steer for a model (PASTA's multi-task profiling)."""

from attnsteer.profiling.config import DEFAULT_TASKS, ProfileConfig, ProfileInputError
from attnsteer.profiling.methods import (
    ProfileMethod,
    TaskProfile,
    profile_method_names,
    profile_task,
    register_profile_method,
)
from attnsteer.profiling.profile import ProfileResult, profile_heads
from attnsteer.profiling.selection import RULES, choose_k, rank_heads, select_heads

__all__ = ["DEFAULT_TASKS", "RULES", "ProfileConfig", "ProfileInputError", "ProfileMethod", "ProfileResult",
           "TaskProfile", "choose_k", "profile_heads", "profile_method_names", "profile_task",
           "register_profile_method", "rank_heads", "select_heads"]
