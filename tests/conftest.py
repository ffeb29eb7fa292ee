"""Shared fixtures. Tests never reach real AWS: fake credentials and a local region are forced."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

import engine.aws.clients

# Property tests check rules, not speed (speed is measured by `make bench`): no per-example
# deadline, so a busy machine cannot fail a correct rule. In CI they also draw the same examples
# every run, so a result can be reproduced; developers keep random exploration by default.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_REGION": "ap-northeast-1",
    }
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "TEIJI_DRY_RUN", "TEIJI_PROTECTED"):
    os.environ.pop(_var, None)

# moto checks requests less strictly than AWS: in tests botocore checks every request against
# its model before sending it (the Lambda leaves that to AWS, see engine.aws.clients).
engine.aws.clients.VALIDATE_PARAMETERS = True


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode over HTTP (real signing and serialisation); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def endpoint(moto_server: str) -> Iterator[str]:
    """A clean moto server for one test: state is reset before the test starts."""
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    ).read()
    yield moto_server


@pytest.fixture
def teiji_logging_restored() -> Iterator[None]:
    """The Lambda handler points teiji's log handler at the stdout of the moment (a test's
    capture); take it off afterwards so later tests do not write to a closed stream."""
    import logging

    from engine.logs import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    before = list(logger.handlers)
    level, propagate = logger.level, logger.propagate
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            if handler not in before:
                logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
