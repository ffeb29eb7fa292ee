"""An endpoint that takes the connection and never answers: the CLI gives up in seconds.

A person waits for the CLI. With the tick's timeouts (30 s, six attempts) a hung endpoint
kept a command silent for three minutes; the CLI's own are 10 s and three attempts.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from engine.aws.clients import READ_TIMEOUT_S, Clients
from engine.cli import common
from tests.world import run_cli


class SilentEndpoint:
    """Accepts TCP connections, reads nothing, answers nothing; counts the connections."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self._server.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")


def test_the_cli_waits_less_than_the_tick() -> None:
    import argparse

    cli = common.make_clients(argparse.Namespace()).config
    tick = Clients(region="ap-northeast-1").config
    assert cli.read_timeout == common.CLI_READ_TIMEOUT_S < tick.read_timeout == READ_TIMEOUT_S
    assert cli.retries is not None and tick.retries is not None
    assert cli.retries["max_attempts"] < tick.retries["max_attempts"]
    # Three attempts of 10 s: a hung endpoint fails a command in about half a minute.
    attempts = cli.retries["max_attempts"] + 1
    assert attempts * common.CLI_READ_TIMEOUT_S <= 30


@pytest.mark.parametrize("argv", [["list"], ["explain", "c1/web"], ["validate", "--table"]])
def test_a_silent_endpoint_fails_the_command_in_its_attempts(
    argv: list[str],
    silent: SilentEndpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common, "CLI_READ_TIMEOUT_S", 0.3)
    started = time.monotonic()
    code, out, err = run_cli(capsys, silent.url, *argv)
    elapsed = time.monotonic() - started
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert "timeout" in err.lower() and silent.url in err
    # Each request is sent three times (the first and two retries), not six.
    assert len(silent.connections) % 3 == 0 and 0 < len(silent.connections) <= 3 * 4
    assert elapsed < 10  # 0.3 s a wait, three attempts, a few reads side by side
