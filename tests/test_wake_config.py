"""TEIJI_WAKE_TARGET_GROUP_ARN: empty turns wake on request off; anything else must be a
target group ARN, or the run stops with a line naming the setting."""

from __future__ import annotations

import pytest

from engine.config import Settings, SettingsError

ARN = (
    "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
    "targetgroup/teiji-wake/0123456789abcdef"
)


def test_unset_or_empty_means_wake_unavailable() -> None:
    assert Settings.from_env({}).wake_target_group is None
    assert Settings.from_env({"TEIJI_WAKE_TARGET_GROUP_ARN": " "}).wake_target_group is None


def test_a_target_group_arn_is_taken() -> None:
    env = {"TEIJI_WAKE_TARGET_GROUP_ARN": f" {ARN} "}
    assert Settings.from_env(env).wake_target_group == ARN


@pytest.mark.parametrize(
    "value",
    [
        "teiji-wake",
        ARN.replace("targetgroup", "loadbalancer"),
        ARN + "\nx",
        "arn:aws:elasticloadbalancing:ap-northeast-1:1234:targetgroup/teiji-wake/0123456789abcdef",
    ],
)
def test_anything_else_stops_the_run(value: str) -> None:
    with pytest.raises(
        SettingsError, match=r"^TEIJI_WAKE_TARGET_GROUP_ARN: .* is not a target group ARN"
    ):
        Settings.from_env({"TEIJI_WAKE_TARGET_GROUP_ARN": value})
