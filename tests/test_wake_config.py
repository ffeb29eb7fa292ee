"""TEIJI_WAKE_TARGET_GROUPS: each load balancer paired with its wake target group (a target
group serves one load balancer only); empty turns wake on request off; anything else stops
the run with a line naming the setting."""

from __future__ import annotations

import pytest

from engine.config import Settings, SettingsError

PREFIX = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
LB = PREFIX + "loadbalancer/app/stg/0123456789abcdef"
LB2 = PREFIX + "loadbalancer/app/dev/fedcba9876543210"
TG = PREFIX + "targetgroup/teiji-wake-0/0123456789abcdef"
TG2 = PREFIX + "targetgroup/teiji-wake-1/0123456789abcdef"
NAME = "TEIJI_WAKE_TARGET_GROUPS"


def test_unset_or_empty_means_wake_unavailable() -> None:
    assert Settings.from_env({}).wake_target_groups == ()
    assert Settings.from_env({NAME: " , "}).wake_target_groups == ()


def test_pairs_are_taken_in_any_order_with_spaces() -> None:
    env = {NAME: f" {LB2} = {TG2} ,{LB}={TG} "}
    assert Settings.from_env(env).wake_target_groups == ((LB2, TG2), (LB, TG))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("teiji-wake", "is not an Application Load Balancer ARN"),
        (TG, "is not an Application Load Balancer ARN"),
        (f"{LB}", "is not an Application Load Balancer ARN"),
        (f"{LB}={LB}", "is not a target group ARN"),
        (f"{LB}={TG}\nx", "is not a target group ARN"),
        (f"{LB.replace('app/', 'net/')}={TG}", "is not an Application Load Balancer ARN"),
        (f"{LB}={TG.replace('123456789012', '210987654321')}", "not in the account and region"),
        (f"{LB}={TG.replace('ap-northeast-1', 'us-east-1')}", "not in the account and region"),
        (f"{LB}={TG},{LB}={TG2}", "is named twice"),
        (f"{LB}={TG},{LB2}={TG}", "is named twice"),
    ],
)
def test_anything_else_stops_the_run(value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{NAME}: .*{says}"):
        Settings.from_env({NAME: value})


def test_a_huge_value_is_not_echoed_whole() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({NAME: "x" * 100_000})
    assert len(str(caught.value)) < 1_000
