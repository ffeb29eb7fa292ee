"""What the fan-out tests share: a tick handed out through a real queue in moto, and a
service's desired count."""

from __future__ import annotations

from datetime import datetime

import boto3

from engine.config import Settings
from engine.fanout import WorkItem, parse_work_item
from engine.fanout_run import orchestrate, sqs_sender
from tests.world import World


def desired(world: World, name: str, cluster: str = "c1") -> int:
    found = world.ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    return int(found["desiredCount"])


def handout(world: World, settings: Settings, at: datetime) -> WorkItem:
    """The one scope's work item the orchestrator sends for tick ``at``."""
    sqs = boto3.client("sqs", region_name=world.region)
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    clients = world.clients()
    orchestrate(clients, settings, sqs_sender(clients, queue), at=at, dry_run=False)
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    (item,) = [i for i in (parse_work_item(m["Body"]) for m in got) if i.kind == "scope"]
    return item
