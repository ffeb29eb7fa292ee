"""What the wake function answers the load balancer (pure).

A browser gets a small page that says the service is starting and reloads itself every few
seconds (the reload is also what finishes the wake: each one lets the function converge the
service again, and once its targets are healthy the rules are restored and the reload reaches
the service itself). Any other client gets ``503 Service Unavailable`` with ``Retry-After`` and
a short JSON body, so scripts and health probes retry instead of taking the page for content.
Nothing here is ever cached (``Cache-Control: no-store``). Every text from the request or the
documents is escaped for HTML; the answer holds no request header or body.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# How often the page reloads itself and how long clients are told to wait.
RETRY_AFTER_S = 5
# Shown when teiji has no better figure: ECS starting a task plus the target group's health
# checks (two at 30 s by default) takes about this long.
DEFAULT_READY_S = 60

Status = Literal["starting", "kept-stopped", "not-asleep", "refused", "bad-request", "error"]

_REASONS = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


@dataclass(frozen=True)
class Answer:
    """What to tell the client: the status, a sentence, and the service when there is one."""

    status: Status
    message: str
    service: str | None = None
    ready_in_s: int | None = None


def http_status(answer: Answer, browser: bool) -> int:
    if answer.status == "bad-request":
        return 400
    if answer.status == "refused":
        return 403
    if answer.status == "error":
        return 500
    if answer.status == "starting" and browser:
        return 200  # the page itself is what a person asked for; it reloads until ready
    return 503


def respond(
    answer: Answer, *, browser: bool, multi_value: bool, head: bool = False
) -> dict[str, Any]:
    """The Lambda response an ALB target returns (``multiValueHeaders`` when the target group
    has multi-value headers on: ALB then requires them in the answer too)."""
    code = http_status(answer, browser)
    headers: dict[str, str] = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if browser:
        headers["Content-Type"] = "text/html; charset=utf-8"
        body = page(answer)
    else:
        headers["Content-Type"] = "application/json"
        body = json.dumps(_json_body(answer), ensure_ascii=False)
    if answer.status in ("starting", "not-asleep", "error"):
        headers["Retry-After"] = str(RETRY_AFTER_S)
    response: dict[str, Any] = {
        "statusCode": code,
        "statusDescription": _REASONS[code],
        "isBase64Encoded": False,
        "body": "" if head else body,
    }
    if multi_value:
        response["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    else:
        response["headers"] = headers
    return response


def _json_body(answer: Answer) -> Mapping[str, Any]:
    body: dict[str, Any] = {"status": answer.status, "message": answer.message}
    if answer.service:
        body["service"] = answer.service
    if answer.ready_in_s is not None:
        body["ready_in_s"] = answer.ready_in_s
    if answer.status in ("starting", "not-asleep"):
        body["retry_after_s"] = RETRY_AFTER_S
    return body


def page(answer: Answer) -> str:
    """A small self-contained HTML page (no script, no outside resource)."""
    title = {
        "starting": f"Starting {answer.service or 'the service'}",
        "kept-stopped": f"{answer.service or 'The service'} is kept stopped",
        "not-asleep": "Almost there",
    }.get(answer.status, "Cannot wake this service")
    reload = (
        f'<meta http-equiv="refresh" content="{RETRY_AFTER_S}">'
        if answer.status in ("starting", "not-asleep")
        else ""
    )
    usually = (
        f"<p>Usually ready in about {answer.ready_in_s} s. This page reloads itself.</p>"
        if answer.status == "starting" and answer.ready_in_s is not None
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{reload}'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
        "padding:0 1rem;color:#222}h1{font-size:1.4rem}p{line-height:1.5}"
        "small{color:#666}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(answer.message)}</p>{usually}"
        "<p><small>teiji (定時) stops this service outside working hours and starts it "
        "on request.</small></p></body></html>"
    )
