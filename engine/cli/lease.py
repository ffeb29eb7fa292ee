"""``teiji lease`` and ``teiji lease break HOLDER``: who holds the tick lease, and removing a
stale one.

- ``teiji lease [--json]`` lists the deployment's shard count and every lease held, live or
  run out (exit 0; 1 when the state table cannot be read).
- ``teiji lease break HOLDER`` removes the leases ``HOLDER`` holds, on the condition that it
  still holds them (a compare-and-swap on the lease record): exit 0 when removed, 1 when
  ``HOLDER`` holds none (its tick ended, or another tick holds them now), 2 for bad usage.
  A lease runs out by itself one lease length after its tick died; break one only when the
  list shows that its holder (host and pid, or Lambda request id) is no longer running.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    make_clients,
    print_json,
    table,
)
from engine.config import Settings
from engine.lease import (
    LEASE_ERRORS,
    LeaseTable,
    Slot,
    Snapshot,
    break_holder,
    printable,
    slots_of,
    utc,
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds ``lease`` (with ``lease break``)."""
    lease = sub.add_parser(
        "lease",
        help="show the tick leases; `lease break HOLDER` removes a stale one",
        description="List the tick leases in the state table: the deployment's shard count and "
        "each lease's holder (Lambda request id, or host and pid), when it was taken and when "
        "it expires. A lease is renewed while its tick works and runs out one lease length "
        "(TEIJI_LEASE_SECONDS) after its tick died.",
    )
    lease.add_argument("--json", action="store_true", help="print the leases as JSON")
    add_aws_options(lease)
    lease.set_defaults(func=run_lease_list)
    actions = lease.add_subparsers(dest="lease_command", metavar="ACTION")
    broken = actions.add_parser(
        "break",
        help="remove the leases a dead tick holds",
        description="Remove every lease HOLDER holds, only if it still holds them. Exit 0 when "
        "removed, 1 when HOLDER holds none (it ended, or another tick holds them now). Break a "
        "lease only when its holder is no longer running: a live tick stops writing at its "
        "next renewal, but may finish one write meanwhile.",
    )
    broken.add_argument("holder", metavar="HOLDER", help="the holder, as `teiji lease` shows it")
    broken.add_argument("--json", action="store_true", help="print the result as JSON")
    add_aws_options(broken)
    broken.set_defaults(func=run_lease_break)


def _table(args: argparse.Namespace) -> tuple[LeaseTable, Settings]:
    settings = Settings.from_env()
    return LeaseTable(make_clients(args, settings), settings.state_table), settings


def _read(leases: LeaseTable) -> Snapshot:
    try:
        return leases.read()
    except LEASE_ERRORS as exc:
        raise CliError(f"cannot read the leases in {leases.table}: {exc}", EXIT_FAILED) from exc


def _lease_json(name: str, slot: Slot, now: float) -> dict[str, Any]:
    return {
        "lease": name,
        "holder": slot.holder,
        "taken_at": utc(slot.taken_at).isoformat(),
        "expires_at": utc(slot.expires_at).isoformat(),
        "live": slot.live(now),
    }


def run_lease_list(args: argparse.Namespace) -> int:
    leases, _ = _table(args)
    snapshot = _read(leases)
    now = time.time()
    rows = [_lease_json(name, slot, now) for name, slot in slots_of(snapshot)]
    shards = snapshot.record.shards if snapshot.record else None
    if args.json:
        print_json({"table": leases.table, "shards": shards, "leases": rows})
        return EXIT_OK
    counted = f"{shards} shard(s)" if shards else "no shard count recorded yet (no tick has run)"
    print(f"{leases.table}: the deployment ticks in {counted}")
    if not rows:
        print("no lease is held")
        return EXIT_OK
    print(
        table(
            ("LEASE", "HOLDER", "TAKEN", "EXPIRES", "STATE"),
            [
                (
                    row["lease"],
                    printable(row["holder"]),
                    row["taken_at"],
                    row["expires_at"],
                    "live" if row["live"] else "ran out",
                )
                for row in rows
            ],
        )
    )
    return EXIT_OK


def run_lease_break(args: argparse.Namespace) -> int:
    holder = args.holder.strip()
    if not holder:
        raise CliError("HOLDER is empty; copy it from `teiji lease`")
    leases, _ = _table(args)
    try:
        broken = break_holder(leases, holder)
    except LEASE_ERRORS as exc:
        raise CliError(f"cannot break the lease in {leases.table}: {exc}", EXIT_FAILED) from exc
    if args.json:
        print_json({"holder": holder, "broken": broken})
    elif broken:
        print(f"removed {', '.join(broken)} held by {holder}")
    else:
        print(
            f"{holder} holds no lease in {leases.table} (its tick ended, or another tick holds "
            "it now); nothing removed. `teiji lease` lists the leases"
        )
    return EXIT_OK if broken else EXIT_FAILED
