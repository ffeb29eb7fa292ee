"""Saved listener rules in the state table (``schemas.records.SavedRule``): written before a
rule is swapped, never overwritten, amended and deleted only if still the version read.

Items: ``pk`` = ``wake-rule``, ``sk`` = ``<service key>#<rule ARN>``, beside the baselines.
The actions and conditions are kept as JSON text: DynamoDB would turn their numbers into
decimals, and the restore must give the rule back exactly what it had.
"""

from __future__ import annotations

import json
from typing import Any

from engine.store import StateStore, conditional_write, from_attribute_map, to_attribute_map
from schemas.records import WAKE_RULE_PK, SavedRule


def _item(rule: SavedRule) -> dict[str, Any]:
    body = rule.model_dump(mode="json", exclude_none=True, exclude={"actions", "conditions"})
    return {
        "pk": WAKE_RULE_PK,
        "sk": rule.sort_key,
        **body,
        "actions": json.dumps(rule.actions, sort_keys=True),
        "conditions": json.dumps(rule.conditions, sort_keys=True),
    }


def _version_condition(expected: SavedRule) -> dict[str, Any]:
    return {
        "ConditionExpression": "version = :v",
        "ExpressionAttributeValues": {":v": {"S": expected.version}},
    }


class UnreadableRuleError(ValueError):
    """A saved rule that cannot be read: its original actions are unknown."""


def _parse(item: dict[str, Any], table: str) -> SavedRule:
    try:
        fields = {k: v for k, v in item.items() if k not in ("pk", "sk")}
        fields["actions"] = json.loads(str(fields["actions"]))
        fields["conditions"] = json.loads(str(fields.get("conditions", "[]")))
        return SavedRule.model_validate(fields)
    except (KeyError, ValueError) as exc:  # json and pydantic errors are ValueErrors
        why = str(exc).splitlines()[0][:200]
        raise UnreadableRuleError(
            f"the saved rule {item.get('pk')}/{item.get('sk')} in {table} cannot be read "
            f"({why}); nothing is done to this service's rules until it is repaired"
        ) from None


def save_rule(state: StateStore, rule: SavedRule) -> bool:
    """Save unless one exists (never overwrite); True when this call wrote it."""
    return conditional_write(
        state.clients.dynamodb().put_item,
        TableName=state.table,
        Item=to_attribute_map(_item(rule)),
        ConditionExpression="attribute_not_exists(pk)",
    )


def amend_rule(state: StateStore, expected: SavedRule, amended: SavedRule) -> bool:
    """Replace the record with ``amended`` only if it is still ``expected``."""
    return conditional_write(
        state.clients.dynamodb().put_item,
        TableName=state.table,
        Item=to_attribute_map(_item(amended)),
        **_version_condition(expected),
    )


def delete_rule(state: StateStore, expected: SavedRule) -> bool:
    """Delete the record only if it is still the one that was read; True when deleted."""
    return conditional_write(
        state.clients.dynamodb().delete_item,
        TableName=state.table,
        Key={"pk": {"S": WAKE_RULE_PK}, "sk": {"S": expected.sort_key}},
        **_version_condition(expected),
    )


def saved_rules(state: StateStore, key: str) -> dict[str, SavedRule]:
    """The service's saved rules by rule ARN (a strongly consistent Query, every page).

    A record that cannot be read raises: its rule's original actions are unknown, so nothing
    may be done to the service's rules until people repair it (fail closed)."""
    client = state.clients.dynamodb()
    found: dict[str, SavedRule] = {}
    params: dict[str, Any] = {
        "TableName": state.table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": WAKE_RULE_PK}, ":prefix": {"S": f"{key}#"}},
        "ConsistentRead": True,
    }
    while True:
        answer = client.query(**params)
        for raw in answer.get("Items", []):
            rule = _parse(from_attribute_map(raw), state.table)
            if rule.key == key:  # another key sharing the prefix is not this service's
                found[rule.rule_arn] = rule
        last = answer.get("LastEvaluatedKey")
        if not last:
            return found
        params["ExclusiveStartKey"] = last


def every_saved_rule(state: StateStore) -> tuple[list[SavedRule], int]:
    """Every saved rule of every service (the wake function's lookup), and how many records
    could not be read. Those are left out here: a request is never matched to a service by a
    rule whose conditions are unknown; the tick fails that service closed (``saved_rules``)."""
    from engine.store import query_items

    rules: list[SavedRule] = []
    unreadable = 0
    for item in query_items(state.clients, state.table, WAKE_RULE_PK):
        try:
            rules.append(_parse(item, state.table))
        except UnreadableRuleError:
            unreadable += 1
    return rules, unreadable
