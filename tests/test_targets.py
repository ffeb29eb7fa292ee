"""Target checks, pure part: which targets a service's tasks stand for, and what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.targets import (
    Target,
    TargetFinding,
    TargetReport,
    classify_tasks,
    compare,
    expected_targets,
    is_valid_target_id,
    target_group_name,
    task_phase,
)

CLUSTER = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/main"
TG_A = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/web-a/0123456789abcdef"
TG_B = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/web-b/fedcba9876543210"
DEPLOYMENT = "ecs-svc/1234567890123456789"
INSTANCE_ARN = "arn:aws:ecs:ap-northeast-1:123456789012:container-instance/main/abc"


def service(*target_groups: str, port: int = 8080, name: str = "web") -> dict[str, Any]:
    return {
        "serviceName": name,
        "clusterArn": CLUSTER,
        "deployments": [{"id": DEPLOYMENT, "status": "PRIMARY"}],
        "loadBalancers": [
            {"targetGroupArn": tg, "containerName": "app", "containerPort": port}
            for tg in target_groups
        ],
    }


def awsvpc_task(
    task_id: str,
    ip: str,
    *,
    last: str = "RUNNING",
    desired: str = "RUNNING",
    group: str = "service:web",
    started_by: str = DEPLOYMENT,
    via_container: bool = False,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskArn": f"arn:aws:ecs:ap-northeast-1:123456789012:task/main/{task_id}",
        "clusterArn": CLUSTER,
        "lastStatus": last,
        "desiredStatus": desired,
        "group": group,
        "startedBy": started_by,
        "containers": [{"name": "app", "networkInterfaces": []}],
        "attachments": [],
    }
    if via_container:
        task["containers"][0]["networkInterfaces"] = [
            {"attachmentId": "a", "privateIpv4Address": ip}
        ]
    else:
        task["attachments"] = [
            {
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": "subnet-1"},
                    {"name": "privateIPv4Address", "value": ip},
                ],
            }
        ]
    return task


def bridge_task(
    task_id: str, host_port: int | None, *, container_port: int = 8080, last: str = "RUNNING"
) -> dict[str, Any]:
    bindings = (
        []
        if host_port is None
        else [{"containerPort": container_port, "hostPort": host_port, "protocol": "tcp"}]
    )
    return {
        "taskArn": f"arn:aws:ecs:ap-northeast-1:123456789012:task/main/{task_id}",
        "clusterArn": CLUSTER,
        "lastStatus": last,
        "desiredStatus": "RUNNING",
        "group": "service:web",
        "startedBy": DEPLOYMENT,
        "containerInstanceArn": INSTANCE_ARN,
        "containers": [
            {"name": "sidecar", "networkBindings": [{"containerPort": 8080, "hostPort": 1}]},
            {"name": "app", "networkBindings": bindings},
        ],
    }


def health(target_id: str, port: int, state: str = "healthy") -> dict[str, Any]:
    return {"Target": {"Id": target_id, "Port": port}, "TargetHealth": {"State": state}}


# Task phases -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("last", "desired", "phase"),
    [
        ("PROVISIONING", "RUNNING", "starting"),
        ("PENDING", "RUNNING", "starting"),
        ("ACTIVATING", "RUNNING", "starting"),
        ("RUNNING", "RUNNING", "running"),
        ("RUNNING", "STOPPED", "draining"),
        ("DEACTIVATING", "STOPPED", "draining"),
        ("STOPPING", "STOPPED", "draining"),
        ("DEPROVISIONING", "STOPPED", "draining"),
        ("STOPPED", "STOPPED", "stopped"),
        ("DELETED", "STOPPED", "stopped"),
    ],
)
def test_task_phase(last: str, desired: str, phase: str) -> None:
    assert task_phase({"lastStatus": last, "desiredStatus": desired}) == phase


# Expected targets ------------------------------------------------------------------------------
EXPECTED_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, set[Target]]]] = [
    (
        "awsvpc: private IPv4 of the ENI attachment and the container port",
        service(TG_A),
        [awsvpc_task("t1", "10.0.1.23"), awsvpc_task("t2", "10.0.2.7")],
        {TG_A: {Target("10.0.1.23", 8080), Target("10.0.2.7", 8080)}},
    ),
    (
        "awsvpc: the container's network interface when there is no attachment",
        service(TG_A),
        [awsvpc_task("t1", "10.0.1.23", via_container=True)],
        {TG_A: {Target("10.0.1.23", 8080)}},
    ),
    (
        "every target group of the service gets the task",
        service(TG_A, TG_B),
        [awsvpc_task("t1", "10.0.1.23")],
        {TG_A: {Target("10.0.1.23", 8080)}, TG_B: {Target("10.0.1.23", 8080)}},
    ),
    (
        "bridge: the EC2 instance id and the host port bound to the load-balanced container",
        service(TG_A),
        [bridge_task("t1", 32768)],
        {TG_A: {Target("i-0123456789abcdef0", 32768)}},
    ),
    (
        "host networking: the host port equals the container port",
        service(TG_A),
        [bridge_task("t1", 8080)],
        {TG_A: {Target("i-0123456789abcdef0", 8080)}},
    ),
    (
        "bridge task without a binding for the container port has no target",
        service(TG_A),
        [bridge_task("t1", 9000, container_port=9090)],
        {TG_A: set()},
    ),
    (
        "starting, draining and stopped tasks are not expected",
        service(TG_A),
        [
            awsvpc_task("t1", "10.0.0.1", last="PENDING"),
            awsvpc_task("t2", "10.0.0.2", last="ACTIVATING"),
            awsvpc_task("t3", "10.0.0.3", last="RUNNING", desired="STOPPED"),
            awsvpc_task("t4", "10.0.0.4", last="DEACTIVATING", desired="STOPPED"),
            awsvpc_task("t5", "10.0.0.5", last="STOPPED", desired="STOPPED"),
        ],
        {TG_A: set()},
    ),
    (
        "another service's tasks are not this service's (moto lists every task)",
        service(TG_A),
        [
            awsvpc_task("t1", "10.0.0.1", group="service:api", started_by="ecs-svc/999"),
            awsvpc_task("t2", "10.0.0.2", group="family:web", started_by="someone"),
        ],
        {TG_A: set()},
    ),
    (
        "a task of the service is known by its group or by its deployment",
        service(TG_A),
        [
            awsvpc_task("t1", "10.0.0.1", group="service:web", started_by="ecs-svc/old"),
            awsvpc_task("t2", "10.0.0.2", group="family:web", started_by=DEPLOYMENT),
        ],
        {TG_A: {Target("10.0.0.1", 8080), Target("10.0.0.2", 8080)}},
    ),
    (
        "a task of a same-named service in another cluster is not this service's",
        service(TG_A),
        [{**awsvpc_task("t1", "10.0.0.1"), "clusterArn": CLUSTER + "-other"}],
        {TG_A: set()},
    ),
    (
        "a classic load balancer (no target group) is skipped",
        {**service(TG_A), "loadBalancers": [{"loadBalancerName": "old", "containerPort": 80}]},
        [awsvpc_task("t1", "10.0.0.1")],
        {},
    ),
]


@pytest.mark.parametrize(
    ("svc", "tasks", "want"),
    [case[1:] for case in EXPECTED_CASES],
    ids=[case[0] for case in EXPECTED_CASES],
)
def test_expected_targets(
    svc: dict[str, Any], tasks: list[dict[str, Any]], want: dict[str, set[Target]]
) -> None:
    assert expected_targets(svc, tasks, {INSTANCE_ARN: "i-0123456789abcdef0"}) == want


def test_a_task_id_never_becomes_a_target() -> None:
    # A task whose "address" is not an address at all: nothing is expected for it.
    task = awsvpc_task("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef")
    assert expected_targets(service(TG_A), [task], {}) == {TG_A: set()}


def test_running_task_whose_target_cannot_be_worked_out_is_noted() -> None:
    sorted_tasks = classify_tasks(service(TG_A), [bridge_task("t9", 32768)], {})
    assert sorted_tasks.expected == {TG_A: set()}
    assert sorted_tasks.unresolved == [
        f"task t9 has no known EC2 instance for container instance {INSTANCE_ARN}"
    ]


def test_classify_keeps_starting_and_stopped_tasks_apart() -> None:
    tasks = [
        awsvpc_task("run", "10.0.0.1"),
        awsvpc_task("boot", "10.0.0.2", last="PENDING"),
        awsvpc_task("gone", "10.0.0.3", last="STOPPED", desired="STOPPED"),
    ]
    sorted_tasks = classify_tasks(service(TG_A), tasks, {})
    assert sorted_tasks.expected == {TG_A: {Target("10.0.0.1", 8080)}}
    assert sorted_tasks.transitional == {TG_A: {Target("10.0.0.2", 8080)}}
    assert sorted_tasks.stopped == {TG_A: {Target("10.0.0.3", 8080)}}
    assert sorted_tasks.task_of[Target("10.0.0.3", 8080)] == "gone"


def test_a_running_task_owns_an_address_a_stopped_task_had_before() -> None:
    tasks = [
        awsvpc_task("new", "10.0.0.1"),
        awsvpc_task("old", "10.0.0.1", last="STOPPED", desired="STOPPED"),
    ]
    assert classify_tasks(service(TG_A), tasks, {}).task_of[Target("10.0.0.1", 8080)] == "new"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("10.0.1.23", True),
        ("i-0123456789abcdef0", True),
        ("i-1234abcd", True),
        ("0123456789abcdef0123456789abcdef", False),
        ("arn:aws:ecs:ap-northeast-1:123456789012:task/main/0123", False),
        ("fe80::1", False),
        ("", False),
    ],
)
def test_valid_target_ids(value: str, valid: bool) -> None:
    assert is_valid_target_id(value) is valid


def test_target_group_name() -> None:
    assert target_group_name(TG_A) == "web-a"
    assert target_group_name("something-else") == "something-else"


# Compare ---------------------------------------------------------------------------------------
A1, A2, A3 = Target("10.0.0.1", 8080), Target("10.0.0.2", 8080), Target("10.0.0.3", 8080)
OTHER = Target("10.9.9.9", 8080)


COMPARE_CASES: list[
    tuple[
        str,
        str,
        set[Target],
        list[dict[str, Any]],
        set[Target],
        set[Target],
        set[tuple[str, Target]],
        set[Target],
        set[Target],
        bool,
    ]
] = [
    # name, mode, expected, registered, stopped, transitional,
    #   findings (kind, target), registered, deregistered, ok
    ("all good", "verify", {A1, A2}, [health("10.0.0.1", 8080), health("10.0.0.2", 8080)],
     set(), set(), set(), set(), set(), True),
    ("missing, verify", "verify", {A1, A2}, [health("10.0.0.1", 8080)],
     set(), set(), {("missing", A2)}, set(), set(), False),
    ("missing, repair", "repair", {A1, A2}, [health("10.0.0.1", 8080)],
     set(), set(), {("missing", A2)}, {A2}, set(), True),
    ("same address on another port is missing", "repair", {A1}, [health("10.0.0.1", 80)],
     set(), set(), {("missing", A1), ("foreign", Target("10.0.0.1", 80))}, {A1}, set(), True),
    ("unhealthy is reported, never repaired", "repair", {A1},
     [health("10.0.0.1", 8080, "unhealthy")],
     set(), set(), {("unhealthy", A1)}, set(), set(), False),
    ("unhealthy.draining is unhealthy", "verify", {A1},
     [health("10.0.0.1", 8080, "unhealthy.draining")],
     set(), set(), {("unhealthy", A1)}, set(), set(), False),
    ("initial and draining are not findings", "verify", {A1, A2},
     [health("10.0.0.1", 8080, "initial"), health("10.0.0.2", 8080, "draining")],
     set(), set(), set(), set(), set(), True),
    ("foreign is reported, never deregistered", "repair", {A1},
     [health("10.0.0.1", 8080), health("10.9.9.9", 8080)],
     set(), set(), {("foreign", OTHER)}, set(), set(), True),
    ("stale, verify", "verify", {A1}, [health("10.0.0.1", 8080), health("10.0.0.3", 8080)],
     {A3}, set(), {("stale", A3)}, set(), set(), False),
    ("stale, repair", "repair", {A1}, [health("10.0.0.1", 8080), health("10.0.0.3", 8080)],
     {A3}, set(), {("stale", A3)}, set(), {A3}, True),
    ("stale already draining is left to drain", "repair", set(),
     [health("10.0.0.3", 8080, "draining")],
     {A3}, set(), set(), set(), set(), True),
    ("an address reused by a running task is not stale", "repair", {A1},
     [health("10.0.0.1", 8080)],
     {A1}, set(), set(), set(), set(), True),
    ("starting and draining tasks are neither missing nor foreign", "repair", {A1},
     [health("10.0.0.1", 8080), health("10.0.0.2", 8080, "initial"), health("10.0.0.3", 8080)],
     {A3}, {A2, A3}, set(), set(), set(), True),
    ("ignore does nothing", "ignore", {A1}, [health("10.9.9.9", 8080)],
     {OTHER}, set(), set(), set(), set(), True),
    ("empty group, nothing running", "verify", set(), [], set(), set(), set(), set(), set(), True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "want", "present", "stopped", "passing", "findings", "reg", "dereg", "ok"),
    [case[1:] for case in COMPARE_CASES],
    ids=[case[0] for case in COMPARE_CASES],
)
def test_compare(
    mode: Any,
    want: set[Target],
    present: list[dict[str, Any]],
    stopped: set[Target],
    passing: set[Target],
    findings: set[tuple[str, Target]],
    reg: set[Target],
    dereg: set[Target],
    ok: bool,
) -> None:
    report = compare(
        {TG_A: want}, {TG_A: present}, {TG_A: stopped}, mode, transitional={TG_A: passing}
    )
    assert {(f.kind, f.target) for f in report.findings} == findings
    assert all(f.target_group_arn == TG_A for f in report.findings)
    assert set(report.registered) == {(TG_A, t) for t in reg}
    assert set(report.deregistered) == {(TG_A, t) for t in dereg}
    assert report.ok is ok


def test_compare_reads_groups_from_both_sides() -> None:
    report = compare({TG_A: {A1}}, {TG_B: [health("10.0.0.3", 8080)]}, {TG_B: {A3}}, "repair")
    assert set(report.registered) == {(TG_A, A1)}
    assert set(report.deregistered) == {(TG_B, A3)}


def test_sentences_name_the_target_the_task_and_the_group() -> None:
    report = compare(
        {TG_A: {A1}},
        {TG_A: [health("10.0.0.3", 8080), health("0123456789abcdef0123456789abcdef", 8080)]},
        {TG_A: {A3}},
        "verify",
        task_of={A1: "1a2b3c", A3: "9f8e7d"},
    )
    details = {f.kind: f.detail for f in report.findings}
    assert (
        details["missing"] == "10.0.0.1:8080 (task 1a2b3c) is not registered in target group web-a"
    )
    assert details["stale"] == (
        "10.0.0.3:8080 (stopped task 9f8e7d) is still registered in target group web-a"
    )
    assert "looks like an ECS task id" in details["foreign"]
    assert "left in place" in details["foreign"]


def test_unhealthy_sentence_carries_the_reason() -> None:
    described = {
        "Target": {"Id": "10.0.0.1", "Port": 8080},
        "TargetHealth": {
            "State": "unhealthy",
            "Reason": "Target.ResponseCodeMismatch",
            "Description": "Health checks failed with these codes: [502]",
        },
    }
    (finding,) = compare({TG_A: {A1}}, {TG_A: [described]}, {}, "verify").findings
    assert finding.detail.endswith(
        "is unhealthy in target group web-a: Target.ResponseCodeMismatch "
        "Health checks failed with these codes: [502]"
    )


def test_ok_counts_planned_repairs_only_when_they_were_made() -> None:
    finding = TargetFinding(TG_A, A1, "missing", "…")
    assert TargetReport([finding], [(TG_A, A1)], []).ok
    assert not TargetReport([finding], [(TG_A, A1)], [], dry_run=True).ok
    assert not TargetReport([], [], [], error="throttled").ok
    assert TargetReport([TargetFinding(TG_A, OTHER, "foreign", "…")], [], []).ok


def test_report_as_json() -> None:
    report = compare({TG_A: {A1}}, {TG_A: []}, {}, "repair", task_of={A1: "t1"})
    assert report.as_json() == {
        "ok": True,
        "error": None,
        "dry_run": False,
        "findings": [
            {
                "target_group_arn": TG_A,
                "target": {"id": "10.0.0.1", "port": 8080},
                "kind": "missing",
                "detail": "10.0.0.1:8080 (task t1) is not registered in target group web-a",
            }
        ],
        "registered": [{"target_group_arn": TG_A, "id": "10.0.0.1", "port": 8080}],
        "deregistered": [],
        "notes": [],
    }


# Rules for every input -------------------------------------------------------------------------
ips = st.integers(min_value=1, max_value=12).map(lambda n: Target(f"10.0.0.{n}", 8080))
target_sets = st.frozensets(ips, max_size=8).map(set)
states = st.sampled_from(
    ["initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable"]
)


@settings(max_examples=200, deadline=None)
@given(
    want=target_sets,
    present=st.dictionaries(ips, states, max_size=10),
    stopped=target_sets,
    passing=target_sets,
)
def test_repair_touches_only_what_it_may_and_converges(
    want: set[Target],
    present: dict[Target, str],
    stopped: set[Target],
    passing: set[Target],
) -> None:
    registered = {TG_A: [health(t.id, t.port, s) for t, s in present.items()]}
    report = compare(
        {TG_A: want}, registered, {TG_A: stopped}, "repair", transitional={TG_A: passing}
    )
    added = {t for _, t in report.registered}
    removed = {t for _, t in report.deregistered}
    # Only expected targets that are absent are registered, always as an address.
    assert added == want - set(present)
    assert all(is_valid_target_id(t.id) for t in added)
    # Only stopped tasks' targets are removed: never a live one, never a foreign one.
    assert removed <= stopped
    assert not removed & (want | passing)
    foreign = {f.target for f in report.findings if f.kind == "foreign"}
    assert not foreign & removed
    # Verify reports the same findings and changes nothing.
    verified = compare(
        {TG_A: want}, registered, {TG_A: stopped}, "verify", transitional={TG_A: passing}
    )
    assert verified.findings == report.findings
    assert verified.registered == verified.deregistered == []
    # After the repairs, nothing is missing or stale any more.
    after = {t: s for t, s in present.items() if t not in removed} | dict.fromkeys(added, "initial")
    again = compare(
        {TG_A: want},
        {TG_A: [health(t.id, t.port, s) for t, s in after.items()]},
        {TG_A: stopped},
        "repair",
        transitional={TG_A: passing},
    )
    assert not [f for f in again.findings if f.kind in ("missing", "stale")]
    assert again.registered == again.deregistered == []
