"""A real PostgreSQL for the store tests, started by the fixture itself.

``initdb`` into a fresh folder and ``pg_ctl start`` on a free loopback port (TCP on 127.0.0.1
only, its socket in that folder), stopped and removed at the end of the session. PostgreSQL
refuses to run as root (CI runs as root): then the server runs as the ``postgres`` system user
(``runuser -u postgres --``), which owns the folder. The binaries come from Debian's
``postgresql`` package (``make setup`` installs it); only when they are absent are the tests
skipped, with that reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest


def _bindir() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url():
    """``postgresql://`` URL of a private, running PostgreSQL server."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin "
                    "(Debian package postgresql; make setup installs it)")
    prefix: list[str] = []
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        prefix = [shutil.which("runuser") or "/sbin/runuser", "-u", "postgres", "--"]
    base = tempfile.mkdtemp(prefix="itchfpga-pg-")
    data = os.path.join(base, "data")
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*args):
        r = subprocess.run([*prefix, *args], capture_output=True, text=True, env=env,
                           timeout=120)
        if r.returncode:
            raise RuntimeError(f"{args[0]} failed: {r.stderr.strip() or r.stdout.strip()}")

    run(os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--no-sync")
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off")
    run(os.path.join(bindir, "pg_ctl"), "-D", data, "-o", opts, "-l",
        os.path.join(base, "log"), "-w", "-t", "60", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_store(pg_url):
    """A :class:`PostgresStore` on an empty database."""
    import psycopg

    from host.store import PostgresStore

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    st = PostgresStore(pg_url.rsplit("/", 1)[0] + "/" + name)
    yield st
    st.close()


def _count():
    n = 0
    while True:
        n += 1
        yield n


_counter = _count()


@pytest.fixture(scope="session")
def market_and_session(tmp_path_factory):
    """A small generated market and a trading session run on it (``--card model``)."""
    from host.cli import main
    from host.trading.session import run_session

    d = tmp_path_factory.mktemp("store")
    src = d / "m.itch"
    assert main(["generate", "--messages", "8000", "--symbols", "4", "--seed", "7",
                 "--out", str(src)]) == 0
    run_session(src, out_dir=d / "session", export=False)
    return str(src), str(d / "session")
