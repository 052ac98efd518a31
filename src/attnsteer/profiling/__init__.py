"""Head profiling: find which attention heads to steer for a model (PASTA's multi-task profiling)."""

from attnsteer.profiling.methods import METHODS, TaskProfile, profile_task
from attnsteer.profiling.profile import DEFAULT_TASKS, ProfileResult, profile_heads
from attnsteer.profiling.selection import RULES, choose_k, rank_heads, select_heads

__all__ = ["DEFAULT_TASKS", "METHODS", "RULES", "ProfileResult", "TaskProfile", "choose_k", "profile_heads",
           "profile_task", "rank_heads", "select_heads"]
