"""``teiji put``'s account of what it replaces: the field-level differences, and the refusal to
undo an edit made outside teiji (the console, the AWS CLI) unless ``--force``.

The comparison itself is ``engine.putdiff``; this module shows it to people.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.cli.common import indent, plural, table
from engine.putdiff import PlannedPut


def changes_text(plans: Sequence[PlannedPut], *, force: bool) -> str:
    """The CHANGE/KIND/NAME table, then under it each replaced document's changed fields."""
    rows = [(_change_cell(p, force=force), p.kind, p.name) for p in plans]
    lines = [indent(table(("CHANGE", "KIND", "NAME"), rows))]
    for plan in plans:
        if not plan.fields:
            continue
        edited = ""
        if plan.edited:
            edited = (
                " (written outside teiji: it has no teiji_hash)"
                if plan.by_hand
                else " (edited outside teiji since teiji wrote it)"
            )
        lines.append(f"  {plan.kind} {plan.name}{edited}: stored -> file")
        lines.extend(f"    {change}" for change in plan.fields)
    return "\n".join(lines)


def _change_cell(plan: PlannedPut, *, force: bool) -> str:
    if plan.edited:
        return "replaced (--force)" if force else "refused"
    return plan.change


def refusal_text(refused: Sequence[PlannedPut], table_name: str) -> str:
    """Why nothing was written, and the two ways on."""
    names = ", ".join(f"{p.kind} {p.name}" for p in refused)
    first = refused[0]
    get = f"teiji get {first.name}" if first.kind == "schedule" else "teiji get"
    if first.kind == "calendar":
        get = f"teiji get --calendar {first.name}"
    them = "it" if len(refused) == 1 else "them"
    if all(p.by_hand for p in refused):
        how = f"{'was' if len(refused) == 1 else 'were'} written outside teiji (no teiji_hash)"
    elif any(p.by_hand for p in refused):
        how = "changed or were written outside teiji"
    else:
        how = f"changed outside teiji since teiji last wrote {them}"
    return (
        f"{plural(len(refused), 'document')} in {table_name} {how} ({names}); writing the "
        f"files would undo the fields shown above, so nothing was written. Keep the edit: "
        f"`{get}` and bring it into your file; or replace {them}: teiji put --force"
    )
