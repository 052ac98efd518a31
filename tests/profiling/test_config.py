"""`ProfileConfig`: validated on creation (errors name the field and the value), JSON round trip."""

from __future__ import annotations

import json

import pytest

from attnsteer.errors import AttnsteerError, SteeringConfigError
from attnsteer.profiling import ProfileConfig, ProfileInputError
from attnsteer.profiling.methods import UnknownProfileMethodError
from attnsteer.profiling.selection import SelectionError
from attnsteer.steering.config import SteeringConfig
from attnsteer.tasks import UnknownTaskError


def test_defaults_and_lists_become_tuples():
    config = ProfileConfig(tasks=["json_format", "pronoun_change"], k_grid=[2, 4])
    assert config.tasks == ("json_format", "pronoun_change") and config.k_grid == (2, 4)
    assert ProfileConfig().method == "exhaustive" and ProfileConfig().steering == SteeringConfig()


def test_json_round_trip():
    config = ProfileConfig(tasks=("biasbios",), n_train=7, method="gradient", select="task", select_task="biasbios",
                           num_heads=3, k_grid=(1, 3), n_valid=5, steering=SteeringConfig(0.1, "include"),
                           top_layers=2)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["steering"] == {"alpha": 0.1, "mode": "include"} and data["tasks"] == ["biasbios"]
    assert ProfileConfig.from_dict(data) == config


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"tasks": ()}, ProfileInputError, "give at least one task to profile"),
    ({"tasks": "counterfact"}, ProfileInputError, "tasks must be a list, got 'counterfact'"),
    ({"tasks": ("counterfactual",)}, UnknownTaskError, "unknown task 'counterfactual'.*did you mean 'counterfact'"),
    ({"method": "coarse"}, UnknownProfileMethodError, "unknown profiling method 'coarse'.*'exhaustive'"),
    ({"n_train": 0}, ProfileInputError, "n_train must be >= 1, got 0"),
    ({"n_valid": 2.5}, ProfileInputError, "n_valid must be an integer >= 1, got 2.5"),
    ({"top_layers": -1}, ProfileInputError, "top_layers must be >= 1, got -1"),
    ({"k_grid": (2, 0)}, ProfileInputError, r"k_grid must be a non-empty list of integers >= 1, got \[2, 0\]"),
    ({"select": "majority"}, SelectionError, "unknown selection rule 'majority'"),
    ({"select": "task"}, SelectionError, "--select task needs --select-task"),
    ({"top_k": 2, "num_heads": 3}, SelectionError, "not both"),
    ({"top_k": 0}, SelectionError, "--top-k must be >= 1, got 0"),
    ({"num_heads": 0}, SelectionError, "--num-heads must be >= 1, got 0"),
    ({"steering": 0.01}, ProfileInputError, "steering must be a SteeringConfig, got 0.01"),
])
def test_bad_settings_name_the_field_and_the_value(change, error, message):
    with pytest.raises(error, match=message):
        ProfileConfig(**change)
    assert issubclass(error, AttnsteerError)


def test_from_dict_refuses_unknown_fields_and_checks_the_steering():
    with pytest.raises(ProfileInputError, match=r"unknown ProfileConfig fields \['alpha'\]; allowed: tasks"):
        ProfileConfig.from_dict({"alpha": 0.5})
    with pytest.raises(SteeringConfigError, match="alpha must be in"):
        ProfileConfig.from_dict({"steering": {"alpha": 2.0}})


def test_the_head_file_records_the_command_it_was_given():
    from attnsteer.heads import HeadConfig
    from attnsteer.profiling import ProfileResult

    result = ProfileResult("tiny", 3, 4, ProfileConfig(method="gradient"), {}, heads=HeadConfig.from_pairs({(1, 2)}),
                           k=2, command="attnsteer profile --method gradient")
    assert result.head_file()["provenance"].startswith("attnsteer profile --method gradient (method gradient, ")
    assert ProfileResult("tiny", 3, 4, ProfileConfig(), {}, heads=HeadConfig.from_pairs({(1, 2)})).head_file()[
        "provenance"].startswith("attnsteer.profile_heads(...) (method exhaustive, select intersection")
