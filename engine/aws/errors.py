"""AWS failures: which exceptions mean "the AWS side did not answer as asked", and their words.

``AWS_ERRORS`` is the one list every caller catches to fail exactly the services a call
covered: botocore's errors (an error answer, a network failure, an answer that cannot be read,
see ``engine.aws.answers``), an account whose role cannot be assumed, and DynamoDB requests
that did not complete after retries. ``error_code`` and ``error_text`` say what went wrong.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from engine.aws.clients import AccountUnreachableError


class StoreError(RuntimeError):
    """DynamoDB did not complete a request after retries."""


AWS_ERRORS: tuple[type[Exception], ...] = (
    ClientError,
    BotoCoreError,
    AccountUnreachableError,
    StoreError,
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of an error answer (``ConditionalCheckFailedException``...); empty
    for anything that is not one."""
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_text(exc: BaseException) -> str:
    """``Code: message`` for AWS error answers, the message for an unreachable account, and
    ``Type: message`` for everything else."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        message = error.get("Message", str(exc))
        return f"{code}: {message}"
    if isinstance(exc, AccountUnreachableError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
