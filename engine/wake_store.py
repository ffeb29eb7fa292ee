"""Saved listener rules in the state table (``schemas.records.SavedRule``): written before a
rule is swapped, never overwritten, amended and deleted only if still the version read.

Items: ``pk`` = ``wake-rule``, ``sk`` = ``<service key>#<rule ARN>``, beside the baselines.
The actions and conditions are kept as JSON text: DynamoDB would turn their numbers into
decimals, and the restore must give the rule back exactly what it had.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from engine.store import StateStore, conditional_write, query_items, to_attribute_map
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
    found: dict[str, SavedRule] = {}
    for item in query_items(state.clients, state.table, WAKE_RULE_PK, prefix=f"{key}#"):
        rule = _parse(item, state.table)
        if rule.key == key:  # another key sharing the prefix is not this service's
            found[rule.rule_arn] = rule
    return found


class SavedRuleIndex:
    """Every service's saved rules, read with one Query (every page) the first time a tick
    asks, and kept for that tick: the tick converges each service once, under its lease, so
    nobody else writes them meanwhile. Without it, each service would cost a Query per tick.

    A record that cannot be read fails its own service closed (``of`` raises for that key
    only), as ``saved_rules`` does."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._by_key: dict[str, dict[str, SavedRule]] | None = None
        self._unreadable: dict[str, str] = {}

    def of(self, key: str) -> dict[str, SavedRule]:
        with self._lock:  # the tick converges services on several threads
            if self._by_key is None:
                self._by_key = self._read()
        if key in self._unreadable:
            raise UnreadableRuleError(self._unreadable[key])
        return dict(self._by_key.get(key, {}))

    def _read(self) -> dict[str, dict[str, SavedRule]]:
        by_key: dict[str, dict[str, SavedRule]] = {}
        for item in query_items(self.state.clients, self.state.table, WAKE_RULE_PK):
            try:
                rule = _parse(item, self.state.table)
            except UnreadableRuleError as exc:
                self._unreadable[str(item.get("sk", "")).partition("#")[0]] = str(exc)
                continue
            by_key.setdefault(rule.key, {})[rule.rule_arn] = rule
        return by_key


def every_saved_rule(state: StateStore) -> tuple[list[SavedRule], int]:
    """Every saved rule of every service (the wake function's lookup), and how many records
    could not be read. Those are left out here: a request is never matched to a service by a
    rule whose conditions are unknown; the tick fails that service closed (``saved_rules``)."""
    rules: list[SavedRule] = []
    unreadable = 0
    for item in query_items(state.clients, state.table, WAKE_RULE_PK):
        try:
            rules.append(_parse(item, state.table))
        except UnreadableRuleError:
            unreadable += 1
    return rules, unreadable
