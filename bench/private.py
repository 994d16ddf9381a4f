"""PostgreSQL and RabbitMQ instances of a run's own, to break on purpose.

The fault benchmark (``bench.faults``) kills, stops and restarts its database and its broker;
it must never touch the servers other work on the machine shares.  These start a server from
scratch in a temporary directory, on free loopback ports, and stop it at the end:

- ``PrivatePostgres``: ``initdb`` as the ``postgres`` OS user (when run as root), then
  ``pg_ctl`` on a free port with its unix socket in the temporary directory and trust auth;
  ``stop_immediately()`` is ``pg_ctl stop -m immediate`` (the crash a power cut or an OOM kill
  looks like to the clients), ``start()`` brings it back on the same port and data.
- ``PrivateRabbitMQ``: one ``rabbitmq-server`` node named ``bench-<hex>@localhost`` with its
  own AMQP and distribution ports, Mnesia and log directories, an empty plugins file, its own
  config and its own Erlang cookie (``HOME`` is the temporary directory, so ``rabbitmqctl -n``
  finds it); ``kill()`` sends SIGKILL to that node's ``beam.smp`` only, by its PID.

Only loopback addresses are used; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PrivatePostgres", "PrivateRabbitMQ", "PrivateServerError", "free_port"]

PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBITMQ_BIN = Path(os.environ.get("BENCH_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


class PrivateServerError(RuntimeError):
    """A private server could not be started or stopped; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _run(
    argv: list[str], *, env: dict[str, str] | None = None, timeout_s: float = 60.0, user: str | None = None
) -> tuple[int, str]:
    if user is not None and os.geteuid() == 0:
        argv = ["runuser", "-u", user, "--", *argv]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"{argv[0]} took more than {timeout_s:g} s"
    return process.returncode or 0, output.decode(errors="replace")


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, trust auth, on a free 127.0.0.1 port."""

    def __init__(self, *, user: str = "postgres") -> None:
        self.os_user = user if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="centralita-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.port = free_port()

    @property
    def dsn(self) -> str:
        """asyncpg form, to the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy form, as ``CENTRALITA_DATABASE_URL`` takes it."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def init(self) -> None:
        self.socket_dir.mkdir()
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        code, output = await _run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            user=self.os_user,
        )
        if code != 0:
            raise PrivateServerError(f"initdb failed: {output.strip()[-500:]}")
        await self.start()

    async def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off -c full_page_writes=off -c log_lock_waits=on"
        )
        code, output = await _run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            user=self.os_user,
        )
        if code != 0:
            raise PrivateServerError(f"PostgreSQL did not start: {output.strip()}\n{_tail(self.log)}")

    async def stop_immediately(self) -> None:
        """``pg_ctl stop -m immediate``: every backend ends at once, no checkpoint."""
        await _run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"], user=self.os_user
        )

    async def destroy(self) -> None:
        if self.data.exists():
            await _run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                user=self.os_user,
                timeout_s=30,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def deadlocks(self) -> int:
        """``deadlock detected`` errors in the server's log so far."""
        try:
            return self.log.read_text(errors="replace").count("deadlock detected")
        except OSError:
            return 0


class PrivateRabbitMQ:
    """One RabbitMQ node of the run's own: own name, ports, directories, config and cookie."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="centralita-rmq-"))
        self.node = f"bench-{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.log = self.root / "server.log"
        self._process: asyncio.subprocess.Process | None = None
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "disk_free_limit.absolute = 50MB\n"
        )

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            {
                "HOME": str(self.root),
                "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.root / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
                "RABBITMQ_PID_FILE": str(self.root / "node.pid"),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                "RABBITMQ_SERVER_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            }
        )
        return env

    async def ctl(self, *args: str, timeout_s: float = 60.0) -> tuple[int, str]:
        """``rabbitmqctl -n NODE ARGS`` with this node's cookie."""
        return await _run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self._env(), timeout_s=timeout_s
        )

    async def start(self) -> None:
        log = self.log.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(RABBITMQ_BIN / "rabbitmq-server"),
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        # The node registers with epmd a moment after it starts: until then ``await_startup``
        # answers "not running at all" at once.
        deadline = asyncio.get_running_loop().time() + 90
        code, output = 1, ""
        while asyncio.get_running_loop().time() < deadline:
            code, output = await self.ctl("await_startup", "--timeout", "90", timeout_s=100)
            if code == 0 or self._process.returncode is not None:
                break
            await asyncio.sleep(0.5)
        if code != 0:
            await self.kill()
            raise PrivateServerError(
                f"RabbitMQ node {self.node} did not start: {output.strip()[-400:]}\n{_tail(self.log)}"
            )

    def beam_pid(self) -> int | None:
        """The PID of this node's Erlang VM, from its pid file (never found by name)."""
        try:
            return int((self.root / "node.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    async def kill(self) -> None:
        """SIGKILL this node's ``beam.smp`` (and the shell that started it); nothing else."""
        pid = self.beam_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._process is not None:
            # The shell that started the VM exits with it; kill it only if it does not.
            try:
                await asyncio.wait_for(self._process.wait(), timeout=10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
            self._process = None
        (self.root / "node.pid").unlink(missing_ok=True)

    async def queue_depths(self) -> dict[str, int]:
        """Messages ready + unacked per queue, as ``rabbitmqctl list_queues`` reports them."""
        code, output = await self.ctl(
            "list_queues", "-q", "--no-table-headers", "name", "messages", timeout_s=30
        )
        if code != 0:
            return {}
        depths: dict[str, int] = {}
        for line in output.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                depths[parts[0]] = int(parts[1])
        return depths

    async def destroy(self) -> None:
        if self._process is not None or self.beam_pid() is not None:
            await self.ctl("stop", timeout_s=30)
            await self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
