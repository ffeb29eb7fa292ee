"""boto3 clients for teiji: standard retries, one cache per (service, account, region).

Every client refuses operations that are not in ``engine.aws.operations`` and runs the
registered ``before_call`` hooks (pacing, test recorders) ahead of each request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from engine import __version__
from engine.aws.operations import Operation, lookup

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_sts import STSClient

# (operation, account or None for the deployment's own, region) -> None; may block (pacing).
BeforeCall = Callable[[Operation, str | None, str], None]


class UnlistedOperationError(RuntimeError):
    """An operation outside the catalogue: the IAM policy would not allow it either."""


class AccountUnreachableError(RuntimeError):
    """The role in another account could not be assumed."""


def retry_config(max_attempts: int = 5) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        user_agent_extra=f"teiji/{__version__}",
        connect_timeout=5,
        read_timeout=30,
    )


class Clients:
    """Builds and caches clients. ``account=None`` means the deployment's own account."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        role_name: str | None = None,
        external_id: str | None = None,
        session: boto3.session.Session | None = None,
        max_attempts: int = 5,
    ) -> None:
        self._session = session or boto3.session.Session(profile_name=profile, region_name=region)
        self.region: str = self._session.region_name or region or "ap-northeast-1"
        self.endpoint_url = endpoint_url
        self.role_name = role_name
        self.external_id = external_id
        self.config = retry_config(max_attempts)
        self.before_call: list[BeforeCall] = []
        self._cache: dict[tuple[str, str | None, str], Any] = {}
        self._sessions: dict[str, boto3.session.Session] = {}
        self._lock = threading.Lock()

    # Typed accessors -------------------------------------------------------------------------
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb", None, None)
        return client

    def sts(self) -> STSClient:
        client: STSClient = self._client("sts", None, None)
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
    def _client(self, service: str, account: str | None, region: str | None) -> Any:
        region = region or self.region
        key = (service, account, region)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        session = self._session if account is None else self._assumed_session(account)
        client = session.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=self.config,
        )
        client.meta.events.register("before-call.*.*", self._make_guard(service, account, region))
        with self._lock:
            return self._cache.setdefault(key, client)

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

    def _assumed_session(self, account: str) -> boto3.session.Session:
        with self._lock:
            cached = self._sessions.get(account)
        if cached is not None:
            return cached
        if not self.role_name:
            raise AccountUnreachableError(
                f"account {account}: no role name configured (set TEIJI_ROLE_NAME)"
            )
        params: dict[str, Any] = {
            "RoleArn": f"arn:aws:iam::{account}:role/{self.role_name}",
            "RoleSessionName": "teiji",
        }
        if self.external_id:
            params["ExternalId"] = self.external_id
        try:
            creds = self.sts().assume_role(**params)["Credentials"]
        except Exception as exc:  # any failure makes this account's services fail, not the tick
            raise AccountUnreachableError(f"account {account}: cannot assume role: {exc}") from exc
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.region,
        )
        with self._lock:
            return self._sessions.setdefault(account, session)
