"""A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package.

`initdb` + `pg_ctl` on a fresh directory, listening on 127.0.0.1 only, on a free port, with a
password (scram) and no Unix socket. PostgreSQL refuses to run as root: as root (CI) the server
runs as the package's `postgres` user. Fails loudly when the binaries are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_TEST_PASSWORD = "graphfraud-pg-test-pw"  # local throwaway server only
PG_USER = "graphfraud"


@dataclass(frozen=True)
class PgServer:
    data: Path
    port: int
    bin: Path
    run_as: str | None

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}:{PG_TEST_PASSWORD}@127.0.0.1:{self.port}/postgres"


def pg_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb (or initdb on PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(
        "the verdict-store tests need PostgreSQL: `make system-deps` (apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], run_as: str | None) -> None:
    full = ["runuser", "-u", run_as, "--", *cmd] if run_as else cmd
    done = subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {done.stderr.strip()[-800:]}")


def start_postgres() -> PgServer:
    binary = pg_bin()
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="graphfraud-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PG_TEST_PASSWORD)
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chmod(root, 0o755)
        for path in (root, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(pwfile, 0o600)
    _run(
        [
            str(binary / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--no-sync",
        ],
        run_as,
    )
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off"
    _run(
        [
            str(binary / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        run_as,
    )
    return PgServer(data=data, port=port, bin=binary, run_as=run_as)


def stop_postgres(server: PgServer) -> None:
    try:
        _run(
            [str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop"],
            server.run_as,
        )
    finally:
        shutil.rmtree(server.data.parent, ignore_errors=True)
