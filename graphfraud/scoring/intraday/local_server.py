"""A throwaway local `redis-server` (Debian package `redis-server`) for tests, benchmarks and
trying the shared intraday store on one machine; production runs its own Redis / Valkey.

Binds 127.0.0.1 only, keeps nothing on disk (`save ""`, no AOF) and requires a password. The
password is written to a 0600 config file the server reads, never put on its command line, so
it does not show in process lists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from graphfraud.errors import ConfigError, IntradayUnavailable

HOST = "127.0.0.1"
CONFIG_FILE = "redis.conf"
LOG_FILE = "redis.log"
INSTALL_HINT = "apt-get install redis-server (Debian/Ubuntu), or `make system-deps` as root"


@dataclass(frozen=True)
class LocalRedis:
    """A running local server: what a client needs to reach it (the password is the caller's)."""

    root: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (small race until the server binds it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """Path of `redis-server`, or ConfigError saying how to install it."""
    found = shutil.which("redis-server")
    if found is None:
        raise ConfigError("redis-server is not installed", hint=INSTALL_HINT)
    return found


def write_config(root: Path, port: int, password: str) -> Path:
    """The server's config file, readable by its owner only (it holds the password)."""
    if not password or any(c.isspace() or c == '"' for c in password):
        raise ConfigError("the local redis-server needs a password without spaces or quotes")
    path = root / CONFIG_FILE
    lines = [
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        'save ""',
        "appendonly no",
        f'dir "{root}"',
        f'logfile "{root / LOG_FILE}"',
        "daemonize no",
        "databases 1",
        f'requirepass "{password}"',
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _answers(port: int, password: str) -> bool:
    import redis

    client = redis.Redis(host=HOST, port=port, password=password, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start_redis(
    root: Path | str, password: str, *, port: int | None = None, timeout_s: float = 15.0
) -> LocalRedis:
    """Start `redis-server` with its files under `root` and wait until it answers PING.

    Raises ConfigError when redis-server is missing, IntradayUnavailable when it exits or does
    not answer within `timeout_s` (see `root/redis.log`)."""
    binary = redis_server_binary()
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = write_config(root, port, password)
    with open(root / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            [binary, str(config)],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the caller's terminal does not reach it
        )
    deadline = time.monotonic() + timeout_s
    while not _answers(port, password):
        if proc.poll() is not None:
            raise IntradayUnavailable(
                f"redis-server exited with code {proc.returncode} while starting",
                hint=f"see {root / LOG_FILE}",
            )
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise IntradayUnavailable(
                f"redis-server did not answer on port {port} within {timeout_s:.0f}s",
                hint=f"see {root / LOG_FILE}",
            )
        time.sleep(0.05)
    return LocalRedis(root=root, port=port, pid=proc.pid)


def stop_redis(server: LocalRedis, *, timeout_s: float = 10.0) -> None:
    """Stop the server (SIGTERM, SIGKILL after `timeout_s`) and reap it; nothing is saved."""
    try:
        os.kill(server.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        os.kill(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(server.pid, os.WNOHANG)
        except ChildProcessError:  # not our child (or already reaped): liveness tells
            done = server.pid if not _alive(server.pid) else 0
        if done == server.pid:
            return
        time.sleep(0.02)
    os.kill(server.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(server.pid, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
