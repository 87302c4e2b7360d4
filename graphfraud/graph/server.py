"""A local Bolt + Cypher server for people without Neo4j: ArcadeDB from the `arcadedb-embedded`
wheel, run as a separate `java` process with the wheel's bundled JRE.

Why a separate process (not the in-process jpype server): one JVM per Python process with fixed
options, Java logs mixed into ours, and a JVM crash would take the caller down. The server binds
only 127.0.0.1 (Bolt and the HTTP admin API); its state (pid, ports, database) is written to
`<root>/graphdb.json` so `stop` and `status` work from another process.

The jars are Java 21 class files, so the system Java (often 17) cannot run them: always the
bundled JRE. ArcadeDB writes `./log/` relative to its working directory, which is `root`.

The root password never goes on the command line (`/proc/<pid>/cmdline` is readable by every
local user): ArcadeDB reads each setting from a system property *or* an environment variable of
the same name, so it is passed as `arcadedb.server.rootPassword` in the process environment,
which only the server's owner can read. ArcadeDB stores it hashed under `<root>/config/` at the
first start; our own `GRAPHFRAUD_*` variables are not passed on to java.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from graphfraud.errors import ConfigError, GraphStoreError, GraphStoreUnavailable

STATE_FILE = "graphdb.json"
LOG_FILE = "server.log"
ADMIN_USER = "root"  # ArcadeDB's administrator; the Bolt user name is "root" as well
MIN_PASSWORD_CHARS = 8  # ArcadeDB refuses shorter root passwords (and then waits on stdin)
DEFAULT_DATABASE = "graphfraud"
DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 2480
HOST = "127.0.0.1"
ROOT_PASSWORD_ENV = "arcadedb.server.rootPassword"  # noqa: S105 (the variable name, not a value)


@dataclass(frozen=True)
class BoltServer:
    """A running (or recorded) local server: what a client needs to reach it."""

    root: str
    pid: int
    bolt_port: int
    http_port: int
    database: str
    started_at: str
    user: str = ADMIN_USER

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"


def _package_dir() -> Path:
    """The installed `arcadedb_embedded` folder, found without importing it (no JVM start)."""
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local Bolt server needs the arcadedb-embedded package",
            hint="pip install 'arcadedb-embedded==26.10.2.post1'",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (small race until the server binds it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def check_password(password: str) -> str:
    """ArcadeDB needs a root password of at least 8 characters; say so before starting java."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigError(
            f"the local graph server needs a password of at least {MIN_PASSWORD_CHARS} characters",
            hint="set GRAPHFRAUD_GRAPH__PASSWORD",
        )
    return password


def server_command(
    root: Path, bolt_port: int, http_port: int, database: str, heap: str
) -> list[str]:
    """The java command line (flags from the research probe; every listener on 127.0.0.1).
    Holds no secret: the password travels in `server_environment`."""
    pkg = _package_dir()
    java = pkg / "jre" / "bin" / "java"
    if not java.is_file():
        raise ConfigError(f"no bundled JRE found at {java}", hint="reinstall arcadedb-embedded")
    return [
        str(java),
        f"-Xmx{heap}",
        "--add-modules=jdk.incubator.vector",
        "--enable-native-access=ALL-UNNAMED",
        "-XX:+UseCompactObjectHeaders",
        "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
        "--add-opens=java.base/java.nio.channels.spi=ALL-UNNAMED",
        "--add-opens=java.base/java.lang=ALL-UNNAMED",
        "-Dpolyglot.engine.WarnInterpreterOnly=false",
        "-Dfile.encoding=UTF8",
        f"-Darcadedb.server.rootPath={root}",
        f"-Darcadedb.server.httpIncomingHost={HOST}",
        f"-Darcadedb.server.httpIncomingPort={http_port}",
        "-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        f"-Darcadedb.bolt.host={HOST}",
        f"-Darcadedb.bolt.port={bolt_port}",
        f"-Darcadedb.server.defaultDatabases={database}[{ADMIN_USER}]",
        f"-Darcadedb.bolt.defaultDatabase={database}",
        "-cp",
        str(pkg / "jars" / "*"),
        "com.arcadedb.server.ArcadeDBServer",
    ]


def server_environment(password: str) -> dict[str, str]:
    """The java process's environment: ours without GRAPHFRAUD_* (settings, maybe secrets, that
    java has no use for), plus the root password under ArcadeDB's setting name."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GRAPHFRAUD_")}
    env[ROOT_PASSWORD_ENV] = password
    return env


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(root: Path) -> BoltServer | None:
    """The server recorded in `root`, or None when there is no readable state file."""
    try:
        data = json.loads((Path(root) / STATE_FILE).read_text())
        return BoltServer(**data)
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def _write_state(root: Path, server: BoltServer) -> None:
    tmp = root / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(server), indent=2) + "\n")
    os.replace(tmp, root / STATE_FILE)


def server_status(root: Path) -> BoltServer | None:
    """The recorded server when its process is still alive, else None."""
    state = read_state(root)
    if state is None or not _pid_alive(state.pid):
        return None
    return state


def bolt_answers(uri: str, password: str, database: str, user: str = ADMIN_USER) -> bool:
    """True when the server answers `RETURN 1` on `database` (no driver retry back-off)."""
    from neo4j import GraphDatabase

    try:
        with (
            GraphDatabase.driver(uri, auth=(user, password), connection_timeout=2.0) as driver,
            driver.session(database=database) as session,
        ):
            session.run("RETURN 1").consume()
        return True
    except Exception:  # any failure means "not ready yet"; the caller times out
        return False


def start_server(
    root: Path | str,
    password: str,
    *,
    bolt_port: int | None = None,
    http_port: int | None = None,
    database: str = DEFAULT_DATABASE,
    heap: str = "1g",
    timeout_s: float = 60.0,
) -> BoltServer:
    """Start ArcadeDB under `root` and wait until Bolt answers `RETURN 1`.

    Ports default to the recorded ones (a restart keeps its address), else 7687/2480 when free,
    else any free port. Raises ConfigError when a server already runs there or the password is
    too short, GraphStoreUnavailable when it does not come up in `timeout_s` (see server.log).
    """
    check_password(password)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    running = server_status(root)
    if running is not None:
        raise ConfigError(
            f"a graph server already runs from {root} (pid {running.pid}, {running.uri})",
            hint="`graphfraud graphdb stop` first",
        )
    previous = read_state(root)
    bolt = bolt_port or (previous.bolt_port if previous else _free_or_any(DEFAULT_BOLT_PORT))
    http = http_port or (previous.http_port if previous else _free_or_any(DEFAULT_HTTP_PORT))
    cmd = server_command(root, bolt, http, database, heap)
    with open(root / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=server_environment(password),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the caller's terminal does not kill the server
        )
    server = BoltServer(
        root=str(root),
        pid=proc.pid,
        bolt_port=bolt,
        http_port=http,
        database=database,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write_state(root, server)
    deadline = time.monotonic() + timeout_s
    while not _port_open(bolt) or not bolt_answers(server.uri, password, database):
        if proc.poll() is not None:
            raise GraphStoreUnavailable(
                f"the graph server exited with code {proc.returncode} while starting",
                hint=f"see {root / LOG_FILE}",
            )
        if time.monotonic() > deadline:
            stop_server(root)
            raise GraphStoreUnavailable(
                f"the graph server did not answer on {server.uri} within {timeout_s:.0f}s",
                hint=f"see {root / LOG_FILE}",
            )
        time.sleep(0.1)
    return server


def _free_or_any(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, preferred))
        except OSError:
            return free_port()
    return preferred


def _port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def stop_server(root: Path | str, *, timeout_s: float = 30.0) -> bool:
    """Stop the recorded server (SIGTERM by pid, SIGKILL after `timeout_s`); False when none ran."""
    state = server_status(Path(root))
    if state is None:
        return False
    try:
        os.kill(state.pid, signal.SIGTERM)  # the JVM shutdown hook flushes and closes the database
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while _pid_alive(state.pid) and not _reap(state.pid):
        if time.monotonic() > deadline:
            os.kill(state.pid, signal.SIGKILL)
            _wait_gone(state.pid)
            break
        time.sleep(0.05)
    return True


def _reap(pid: int) -> bool:
    """True when `pid` is our exited child (reaped now) or no longer exists."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:  # not our child: only liveness tells
        return not _pid_alive(pid)


def _wait_gone(pid: int) -> None:
    for _ in range(200):
        if _reap(pid) or not _pid_alive(pid):
            return
        time.sleep(0.05)


def _http_command(server: BoltServer, password: str, command: str) -> None:
    """POST one server command (e.g. `create database x`) to the HTTP admin API."""
    token = base64.b64encode(f"{ADMIN_USER}:{password}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1, fixed scheme)
        f"{server.http_url}/api/v1/server",
        data=json.dumps({"command": command}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (http on 127.0.0.1)
            response.read()
    except urllib.error.HTTPError as exc:
        raise GraphStoreError(
            f"graph server refused `{command.split()[0]} …` ({exc.code})"
        ) from exc
    except OSError as exc:
        raise GraphStoreUnavailable(f"graph server admin API unreachable: {exc}") from exc


def create_database(server: BoltServer, password: str, name: str) -> str:
    """Create an empty database `name` on the local server (tests use one per module)."""
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"database names are letters, digits and _ only, not {name!r}")
    _http_command(server, password, f"create database {name}")
    return name


def drop_database(server: BoltServer, password: str, name: str) -> None:
    """Drop a database created with `create_database`."""
    _http_command(server, password, f"drop database {name}")
