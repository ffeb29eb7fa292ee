"""boto3 clients for teiji: standard retries, one cache per (service, account, region).

Every client refuses operations that are not in ``engine.aws.operations``, runs the registered
``before_call`` hooks (pacing, test recorders) once ahead of each operation, and the
``after_attempt`` hooks (call and throttle counting) after every request sent, retries
included. Credentials for other accounts come from AssumeRole and refresh themselves before
they expire, so a Lambda container that lives across many ticks keeps working.

Each other account's ExternalId is the SSM Parameter Store SecureString
``<external_id_parameter>/<account>``, never an environment variable. It is read only when that
account's role is first assumed and kept for the life of the clients (a warm Lambda container
keeps them across ticks); a failed AssumeRole forgets it, so a rotated ExternalId is read again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.utils import parse_timestamp

from engine import __version__
from engine.aws.answers import check_answer
from engine.aws.lanes import MAX_THREADS
from engine.aws.models import load_models_lean
from engine.aws.operations import Operation, lookup

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

# (operation, account or None for the deployment's own, region) -> None; may block (pacing).
BeforeCall = Callable[[Operation, str | None, str], None]
# (operation, account, region, AWS error code or None) -> None; once per request sent.
# May return a delay in seconds: retry the request after it (a throttled request the pacer
# has paced again), even when botocore's own retries have given up.
AfterAttempt = Callable[[Operation, str | None, str, str | None], float | None]

# Whether botocore checks each request against the model before sending it (see retry_config).
VALIDATE_PARAMETERS = False

ASSUMED_ROLE_SECONDS = 3600  # STS's default; botocore refreshes 15 minutes before the end


class UnlistedOperationError(RuntimeError):
    """An operation outside the catalogue: the IAM policy would not allow it either."""


class AccountUnreachableError(RuntimeError):
    """The role in another account could not be assumed."""


# How long the tick waits for an answer before botocore sends the request again. A tick has
# minutes; a person at the CLI has not, so the CLI passes shorter ones (engine/cli/common.py).
READ_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


def retry_config(
    max_attempts: int = 5,
    *,
    read_timeout: float = READ_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        user_agent_extra=f"teiji/{__version__}",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # One connection per thread that can use the client: the tick runs at most
        # MAX_THREADS at once, all of them on the one DynamoDB client. With botocore's default
        # of 10, connections beyond it are closed after each request and opened (TCP and TLS)
        # again for the next. An idle pool costs nothing.
        max_pool_connections=MAX_THREADS,
        # botocore checks every request's parameters against the model before sending it, in
        # Python, on each of the tick's thousands of requests. teiji's requests are built by
        # its own typed adapters (mypy checks them against the botocore stubs) and AWS
        # validates every request itself: a malformed one is refused (ValidationException)
        # and fails its service as any error answer does. Nothing reaches AWS unchecked.
        # The test suite turns it on (tests/conftest.py): moto validates less than AWS.
        parameter_validation=VALIDATE_PARAMETERS,
    )


def aws_timestamp(value: Any) -> datetime:
    """A timestamp of an answer as an aware datetime in UTC.

    botocore's own parser makes a new ``dateutil.tz.tzlocal()`` for every epoch number it
    reads, about 30 microseconds and a few hundred bytes each; ECS sends a timestamp for each
    of a service's last 100 events in every DescribeServices and UpdateService answer. The
    instant is the same; text (ISO 8601, RFC 822) is read by botocore's parser as before."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OSError, OverflowError, ValueError):
            pass
    parsed: datetime = parse_timestamp(value)
    return parsed


def read_timestamps_in_utc(session: botocore.session.Session) -> None:
    """Make every client of ``session`` read timestamps with ``aws_timestamp``."""
    factory = session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=aws_timestamp)


class Clients:
    """Builds and caches clients. ``account=None`` means the deployment's own account."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        role_name: str | None = None,
        external_id_parameter: str | None = None,
        session: boto3.session.Session | None = None,
        max_attempts: int = 5,
        read_timeout: float = READ_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._session = session or boto3.session.Session(profile_name=profile, region_name=region)
        load_models_lean(self._session._session)
        read_timestamps_in_utc(self._session._session)
        self.region: str = self._session.region_name or region or "ap-northeast-1"
        self.endpoint_url = endpoint_url
        self.role_name = role_name
        self.external_id_parameter = external_id_parameter
        self._external_ids: dict[str, str] = {}  # account -> ExternalId, read from SSM
        self.config = retry_config(
            max_attempts, read_timeout=read_timeout, connect_timeout=connect_timeout
        )
        self.before_call: list[BeforeCall] = []
        self.after_attempt: list[AfterAttempt] = []
        self._cache: dict[tuple[str, str | None, str], Any] = {}
        self._sessions: dict[str, boto3.session.Session] = {}
        self._lock = threading.Lock()  # the caches and the per-account locks
        self._own_account: str | None = None
        # boto3 sessions are not thread-safe: clients and sessions are made one at a time.
        self._create_lock = threading.Lock()
        # One AssumeRole per account even when several threads need the account at once.
        self._account_locks: dict[str, threading.Lock] = {}

    # Typed accessors -------------------------------------------------------------------------
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb", None, None)
        return client

    def sts(self) -> STSClient:
        client: STSClient = self._client("sts", None, None)
        return client

    def own_account(self) -> str:
        """The deployment's own account id (GetCallerIdentity, once; cached). It needs no
        permission. Raises what the call raises."""
        with self._lock:
            known = self._own_account
        if known is None:
            known = str(self.sts().get_caller_identity()["Account"])
            with self._lock:
                self._own_account = known
        return known

    def events(self) -> EventBridgeClient:
        client: EventBridgeClient = self._client("events", None, None)
        return client

    def ssm(self) -> SSMClient:
        client: SSMClient = self._client("ssm", None, None)
        return client

    def cloudwatch(self) -> CloudWatchClient:
        client: CloudWatchClient = self._client("cloudwatch", None, None)
        return client

    def ecs(self, account: str | None = None, region: str | None = None) -> ECSClient:
        client: ECSClient = self._client("ecs", account, region)
        return client

    def autoscaling(
        self, account: str | None = None, region: str | None = None
    ) -> ApplicationAutoScalingClient:
        client: ApplicationAutoScalingClient = self._client(
            "application-autoscaling", account, region
        )
        return client

    def elbv2(
        self, account: str | None = None, region: str | None = None
    ) -> ElasticLoadBalancingv2Client:
        client: ElasticLoadBalancingv2Client = self._client("elbv2", account, region)
        return client

    # Construction ----------------------------------------------------------------------------
    def connect(self, account: str) -> None:
        """Assume the role in ``account`` now (once; cached). Raises AccountUnreachableError.

        A tick calls it for every other account before it fans out, so the (account, region)
        groups of one account never wait for each other's AssumeRole.
        """
        self._assumed_session(account)

    def _client(self, service: str, account: str | None, region: str | None) -> Any:
        region = region or self.region
        key = (service, account, region)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        session = self._session if account is None else self._assumed_session(account)
        with self._create_lock:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
            client = session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=self.config,
            )
            client.meta.events.register(
                "before-call.*.*", self._make_guard(service, account, region)
            )
            client.meta.events.register(
                "needs-retry.*.*", self._make_counter(service, account, region)
            )
            # A 2xx answer that cannot be read fails the call (see engine.aws.answers).
            client.meta.events.register("before-parse.*.*", check_answer)
            with self._lock:
                self._cache[key] = client
        return client

    def _make_guard(self, service: str, account: str | None, region: str) -> Callable[..., None]:
        def guard(model: Any, **_: Any) -> None:
            operation = lookup(service, model.name)
            if operation is None:
                raise UnlistedOperationError(
                    f"{service}:{model.name} is not in engine.aws.operations; add it there and "
                    "to the IAM policy in infra/ before calling it"
                )
            for hook in list(self.before_call):
                hook(operation, account, region)

        return guard

    def _make_counter(
        self, service: str, account: str | None, region: str
    ) -> Callable[..., float | None]:
        # needs-retry fires after every attempt, with the parsed answer or the exception.
        def counter(operation: Any, response: Any = None, **_: Any) -> float | None:
            catalogued = lookup(service, operation.name)
            if catalogued is None or not self.after_attempt:
                return None
            code = _error_code(response)
            delays = [hook(catalogued, account, region, code) for hook in list(self.after_attempt)]
            return next((delay for delay in delays if delay is not None), None)

        return counter

    def _assumed_session(self, account: str) -> boto3.session.Session:
        with self._lock:
            cached = self._sessions.get(account)
            account_lock = self._account_locks.setdefault(account, threading.Lock())
        if cached is not None:
            return cached
        with account_lock:
            with self._lock:
                cached = self._sessions.get(account)
            if cached is not None:
                return cached
            fetch = self._role_credentials(account)
            # Fetch once now so an unreachable account fails here, with a clear error; botocore
            # calls ``fetch`` again whenever the credentials come within 15 minutes of expiry.
            credentials = RefreshableCredentials.create_from_metadata(
                metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
            )
            with self._create_lock:
                core = botocore.session.get_session()
                # Share the service models already loaded: each session would otherwise parse
                # them again (time, and megabytes of memory per account).
                core.register_component("data_loader", self._loader())
                # botocore has no public setter for refreshable credentials; the usual way:
                core._credentials = credentials  # type: ignore[attr-defined]
                read_timestamps_in_utc(core)
                session = boto3.session.Session(botocore_session=core, region_name=self.region)
            with self._lock:
                self._sessions[account] = session
            return session

    def _loader(self) -> Any:
        return self._session._session.get_component("data_loader")

    def _role_credentials(self, account: str) -> Callable[[], dict[str, str]]:
        if not self.role_name:
            raise AccountUnreachableError(
                f"account {account}: no role name configured (set TEIJI_ROLE_NAME)"
            )
        params: dict[str, Any] = {
            "RoleArn": f"arn:aws:iam::{account}:role/{self.role_name}",
            "RoleSessionName": "teiji",
            "DurationSeconds": ASSUMED_ROLE_SECONDS,
        }

        def fetch() -> dict[str, str]:
            external_id = self._external_id(account)
            if external_id is not None:
                params["ExternalId"] = external_id
            try:
                creds = self.sts().assume_role(**params)["Credentials"]
            except Exception as exc:  # this account's services fail, not the tick
                with self._lock:  # perhaps rotated: read it again next time
                    self._external_ids.pop(account, None)
                raise AccountUnreachableError(
                    f"account {account}: cannot assume role: {exc}"
                ) from exc
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        return fetch

    def _external_id(self, account: str) -> str | None:
        """The account's ExternalId from SSM (cached), or None when none is configured."""
        if self.external_id_parameter is None:
            return None
        with self._lock:
            cached = self._external_ids.get(account)
        if cached is not None:
            return cached
        name = f"{self.external_id_parameter}/{account}"
        try:
            answer = self.ssm().get_parameter(Name=name, WithDecryption=True)
            value = answer["Parameter"]["Value"]
            kind = answer["Parameter"].get("Type")
        except Exception as exc:  # missing, denied or unreadable: this account fails
            raise AccountUnreachableError(
                f"account {account}: cannot read its ExternalId from the SSM parameter {name}: "
                f"{exc}"
            ) from exc
        if kind != "SecureString" or not value:
            # Fail closed: a plain String is readable by anyone allowed to describe parameters.
            raise AccountUnreachableError(
                f"account {account}: the SSM parameter {name} must be a non-empty SecureString "
                f"(it is a {kind or 'parameter of unknown type'}); put it again with "
                "--type SecureString"
            )
        with self._lock:
            self._external_ids[account] = value
        return value


def _error_code(response: Any) -> str | None:
    """The AWS error code of one attempt's answer (None for success or a network error)."""
    if not isinstance(response, tuple) or len(response) != 2:
        return None
    parsed = response[1]
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code else None
