"""A throwaway PostgreSQL server for the tests and the benchmarks.

``PostgresCluster.start()`` runs ``initdb`` in a fresh temporary directory and starts
``postgres`` on 127.0.0.1 on a free port, tuned for speed over durability (``fsync=off``:
the cluster is deleted afterwards). PostgreSQL refuses to run as root, which is how the
tests and CI run, so as root the server runs as the unprivileged user ``nobody`` in a
directory owned by it; it also gets a parent-death signal, so a killed test run leaves no
server behind. ``stop()`` shuts it down and deletes the directory.

The one user, ``paddock``, is a superuser with a password; the server trusts local
connections anyway, but URLs have the production shape
``postgresql://paddock:<password>@127.0.0.1:<port>/<db>``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BINDIR = Path(os.environ.get("PADDOCK_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
USER = "paddock"
PASSWORD = "not-a-secret-but-never-printed"
NOBODY = 65534  # uid and gid of ``nobody``/``nogroup`` on Debian
_PR_SET_PDEATHSIG = 1
START_TIMEOUT = 30.0


class ClusterUnavailable(RuntimeError):
    """No server could be started here; ``str()`` says why in one line."""


def _as_server_user() -> None:
    """In the child, before exec: drop root for ``nobody``; die with the parent."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    # After setuid: changing credentials clears the parent-death signal.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)  # SIGQUIT: postgres's immediate shutdown


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """One running server; build it with :meth:`start`, end it with :meth:`stop`."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.root = root
        self.port = port
        self.process = process
        self.version = ""
        self.started_in = 0.0  # seconds from start() to accepting connections

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def start(cls, bindir: Path = BINDIR) -> PostgresCluster:
        """initdb and start a server, or raise :class:`ClusterUnavailable`."""
        began = time.perf_counter()
        for tool in ("initdb", "postgres"):
            if not (bindir / tool).is_file():
                raise ClusterUnavailable(f"no {bindir / tool} (install postgresql-15)")
        root = Path(tempfile.mkdtemp(prefix="paddock-pg-"))
        try:
            if os.geteuid() == 0:
                os.chown(root, NOBODY, NOBODY)
            (root / "pw").write_text(PASSWORD)
            if os.geteuid() == 0:
                os.chown(root / "pw", NOBODY, NOBODY)
            initdb = subprocess.run(
                [str(bindir / "initdb"), "-D", str(root / "data"), "-U", USER,
                 "--pwfile", str(root / "pw"), "--auth=trust", "--no-locale", "-E", "UTF8",
                 "--no-sync", "--no-instructions"],
                preexec_fn=_as_server_user, capture_output=True, text=True, timeout=120,
                cwd=root,
            )
            if initdb.returncode != 0:
                last = (initdb.stderr.strip() or initdb.stdout.strip()).splitlines()
                why = last[-1] if last else f"exit status {initdb.returncode}"
                raise ClusterUnavailable(f"initdb failed: {why}")
            cluster = None
            for _ in range(5):  # another process may take the free port first
                cluster = cls._launch(bindir, root)
                if cluster is not None:
                    break
            if cluster is None:
                raise ClusterUnavailable(f"postgres did not start: {cls._log_tail(root)}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        cluster.started_in = time.perf_counter() - began
        return cluster

    @classmethod
    def _launch(cls, bindir: Path, root: Path) -> PostgresCluster | None:
        port = _free_port()
        log = open(root / "server.log", "ab")  # noqa: SIM115 - the server writes it until stop
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(root / "data"), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "shared_buffers=32MB",
             "-c", "max_pred_locks_per_transaction=256", "-c", "log_min_messages=warning"],
            preexec_fn=_as_server_user, stdout=log, stderr=subprocess.STDOUT, cwd=root,
        )
        log.close()
        cluster = cls(root, port, process)
        deadline = time.monotonic() + START_TIMEOUT
        import psycopg

        while time.monotonic() < deadline:
            if process.poll() is not None:
                return None
            try:
                with psycopg.connect(cluster.url("postgres"), connect_timeout=2) as conn:
                    cluster.version = conn.execute("SHOW server_version").fetchone()[0]
                return cluster
            except psycopg.OperationalError:
                time.sleep(0.05)  # waiting for the server to come up, not for a test's state
        cluster.stop()
        raise ClusterUnavailable(f"postgres did not accept connections in {START_TIMEOUT:g} s")

    @staticmethod
    def _log_tail(root: Path) -> str:
        with contextlib.suppress(OSError):
            lines = (root / "server.log").read_text(errors="replace").strip().splitlines()
            if lines:
                return lines[-1]
        return "no log"

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then delete the directory. Safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def create_database(
        self, name: str, *, template: str | None = None, icu_locale: str | None = None
    ) -> str:
        """Create database ``name`` (a copy of ``template``) and return its URL.

        ``icu_locale`` (such as ``en-US``) sorts its text the way that language does, as
        on most servers, where the cluster itself sorts by bytes (``--no-locale``).
        """
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            sql = f'CREATE DATABASE "{name}"'
            if template is not None:
                sql += f' TEMPLATE "{template}"'
            elif icu_locale is not None:
                sql += (f" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu"
                        f" ICU_LOCALE '{icu_locale}' LOCALE 'C.UTF-8'")
            conn.execute(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def database(self, name: str, *, template: str | None = None) -> Iterator[str]:
        """A fresh database for the duration of the block; yields its URL."""
        url = self.create_database(name, template=template)
        try:
            yield url
        finally:
            self.drop_database(name)
