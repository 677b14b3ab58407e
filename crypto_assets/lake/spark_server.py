"""A long-lived Spark Connect server for the lake, shared by every run: one JVM start and one JIT warm-up per
session of work instead of one per run.

    python -m crypto_assets.lake.spark_server start [--port 15002]   # detaches, returns when ready, prints SPARK_REMOTE
    python -m crypto_assets.lake.spark_server status [--port 15002]
    python -m crypto_assets.lake.spark_server stop [--port 15002]

The server is pyspark's own (``SparkConnectServer`` from the wheel's jars, launched by its ``spark-submit``) with the
lake's settings (``spark_conf``): the same heap, collector, UTC time zones and SQL settings as a local-mode driver.
It listens on 127.0.0.1 only. Its pid and log live in a state folder (``$DAGSTER_HOME/spark-connect``, else
``~/.cache/crypto_assets/spark-connect``), one pair of files per port; ``stop`` sends SIGTERM, then SIGKILL to the
whole process group after a grace period, so no JVM is left behind.

The server's URL names one Connect session (``sc://127.0.0.1:15002/;session_id=<uuid>``, a new id at each start,
kept beside the pid) that its warm-up and every run then share. A Connect session is the unit of Spark's class
isolation: each new one compiles the queries' generated code again, in a class loader of its own, and the JIT starts
over on those classes. S's Parquet step spent more CPU in that than in its own rows; in the shared session a run
finds the warm-up's classes compiled.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from crypto_assets.lake.jvm_classes import ClassArchive
from crypto_assets.lake.processes import process_alive
from crypto_assets.lake.spark import spark_conf

DEFAULT_PORT = 15002
HOST = "127.0.0.1"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
READY_LINE = "Spark Connect server started at"
# Settings spark-submit takes as its own options: they size and configure the JVM it launches.
# A long-lived server keeps what a run's driver would drop at its end: one pool arena of gRPC's direct buffers instead
# of one per core, and a smaller JIT code cache than its 240 MB default, keep its resident memory in bounds.
_SERVER_JVM = ("-Dio.netty.allocator.numDirectArenas=1 -Dio.netty.allocator.numHeapArenas=1 "
               "-XX:ReservedCodeCacheSize=96m")
# The shared session (see above) must outlive idle hours of the UI; a run that still finds it closed gets a session of
# its own (``spark.connect_session``).
_SESSION_TIMEOUT = "7d"
_COMMAND_LINE = {"spark.master", "spark.app.name", "spark.driver.memory", "spark.driver.extraJavaOptions"}


class SparkServerError(RuntimeError):
    """The Connect server did not start, is not ours, or a remote URL is malformed or does not answer."""


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def default_state_dir() -> Path:
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home) / "spark-connect"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crypto_assets" / "spark-connect"


def remote_url(port: int, host: str = HOST) -> str:
    return f"sc://{host}:{port}"


def parse_remote(url: str) -> tuple[str, int]:
    """(host, port) of ``sc://host[:port][/;param=value...]``; Connect's default port when none is given."""
    parsed = urlparse(url)
    try:
        port = parsed.port or DEFAULT_PORT
    except ValueError:
        port = -1
    if parsed.scheme != "sc" or not parsed.hostname or port <= 0:
        raise SparkServerError(
            f"{url!r} is not a Spark Connect URL; expected sc://host:port, e.g. sc://127.0.0.1:15002"
        )
    return parsed.hostname, port


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_our_server(pid: int) -> bool:
    """The pid still is a Connect server JVM (not an unrelated process that got the number after a reboot)."""
    try:
        return SERVER_CLASS in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return process_alive(pid)  # no /proc: trust the pid file


def server_command(conf: dict[str, str], port: int, java_options: str = "") -> list[str]:
    """spark-submit's command line for a Connect server with ``conf`` (see ``spark_conf``) on HOST:``port``."""
    options = " ".join(o for o in (conf.get("spark.driver.extraJavaOptions", ""), _SERVER_JVM, java_options) if o)
    command = [
        str(spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS,
        "--name", conf.get("spark.app.name", "crypto_assets"), "--master", conf.get("spark.master", "local[*]"),
        "--driver-memory", conf.get("spark.driver.memory", "480m"), "--driver-java-options", options,
        "--conf", f"spark.connect.grpc.binding.address={HOST}", "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.log.level=WARN",  # one line per query at INFO would grow the log for as long as it runs
        "--conf", f"spark.connect.session.manager.defaultSessionTimeout={_SESSION_TIMEOUT}",
    ]  # fmt: skip
    for key, value in conf.items():
        if key not in _COMMAND_LINE:
            command += ["--conf", f"{key}={value}"]
    return command


@dataclass
class SparkConnectServer:
    """The lake's Connect server on ``port``, its pid and log files under ``state_dir``."""

    port: int = DEFAULT_PORT
    state_dir: Path | None = None

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir) if self.state_dir else default_state_dir()
        self._process: subprocess.Popen | None = None  # when started by this process: reaped on stop

    @property
    def url(self) -> str:
        """SPARK_REMOTE for this server: its address and the session its runs share (once started)."""
        try:
            session = self.session_file.read_text().strip()
        except OSError:
            session = ""
        return remote_url(self.port) + (f"/;session_id={session}" if session else "")

    @property
    def session_file(self) -> Path:
        return self.state_dir / f"connect-{self.port}.session"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"connect-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"connect-{self.port}.log"

    def pid(self) -> int | None:
        """The pid of our server on this port if it is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) and _is_our_server(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and port_open(HOST, self.port)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, conf: dict[str, str] | None = None, class_cache: str | None = None, timeout: float = 120.0,
              warm: bool = True) -> bool:  # fmt: skip
        """Start the server (detached: its own session, so a terminal's Ctrl-C does not reach it), wait until it
        accepts connections and, with ``warm``, run the lake's queries once on a made-up month (``warm_up``) so the
        first real run does not pay for the JIT. Returns False when ours already runs on the port; fails if another
        process holds it."""
        if self.running():
            return False
        if port_open(HOST, self.port):
            raise SparkServerError(
                f"port {self.port} on {HOST} is already in use by a process this project did not start (no live pid "
                f"in {self.pid_file}); stop it, pick another port (--port), or point SPARK_REMOTE at it to use it"
            )
        conf = dict(conf or spark_conf())
        # Map the local-mode drivers' archive (same class path); never dump one at exit: after hours of queries that
        # took longer than 30 s here, while a clean stop takes 3 s.
        archive = ClassArchive.at(class_cache or None)
        java_options = archive.java_options(write=False) if archive is not None else ""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.session_file.write_text(str(uuid.uuid4()))
        # glibc's per-thread malloc arenas hold ~30 MB of native fragments in a busy JVM; two are enough here.
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "MALLOC_ARENA_MAX": "2"}
        env.setdefault("SPARK_LOCAL_IP", HOST)
        for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "PYSPARK_SUBMIT_ARGS"):
            env.pop(name, None)  # these would turn the server's own launch into a client
        with open(self.log_file, "ab") as log:
            log.write(f"--- starting {self.url} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                server_command(conf, self.port, java_options), env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.state_dir,
            )  # fmt: skip
        self.pid_file.write_text(str(self._process.pid))  # spark-submit execs the JVM: same pid
        try:
            self._wait_ready(timeout)
            if warm:
                self._warm_up(timeout)
        except BaseException:
            self.stop()
            raise
        if archive is not None:
            archive.started(self._process.pid)
        return True

    def _warm_up(self, timeout: float) -> None:
        # In a process of its own: a Connect session would turn this (maybe local-mode) process into a client.
        env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
        kept = self.state_dir / f"connect-{self.port}.warm-up"  # its made-up lake, kept for the next start
        done = subprocess.run([sys.executable, "-m", "crypto_assets.lake.warm_up", self.url, str(kept)], env=env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            raise SparkServerError(f"the Spark Connect server at {self.url} failed its warm-up write:\n"
                                   f"{done.stderr[-2000:]}\nserver log {self.log_file}:\n"
                                   f"{self.log_tail()}")  # fmt: skip

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(HOST, self.port, timeout=0.5):
            if self._process.poll() is not None:
                raise SparkServerError(
                    f"the Spark Connect server for {self.url} exited with code {self._process.returncode} while "
                    f"starting; last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise SparkServerError(
                    f"the Spark Connect server for {self.url} was not ready after {timeout:.0f} s; last lines of "
                    f"{self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, grace: float = 30.0) -> bool:
        """SIGTERM to the server, SIGKILL to its process group after ``grace`` seconds (the JVM writes its class
        archive on a first clean exit, which takes a few seconds). Returns whether a server was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self.session_file.unlink(missing_ok=True)
            self._reap()
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while process_alive(pid) and time.monotonic() < deadline:
            self._reap(block=False)
            time.sleep(0.2)
        try:
            os.killpg(pid, signal.SIGKILL)  # the JVM and anything it forked (Python workers for UDFs)
        except (ProcessLookupError, PermissionError):
            pass
        self._reap()
        self.pid_file.unlink(missing_ok=True)
        self.session_file.unlink(missing_ok=True)
        return True

    def _reap(self, block: bool = True) -> None:
        if self._process is not None:
            if block:
                self._process.wait(timeout=30)
                self._process = None
            elif self._process.poll() is not None:
                self._process = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on {HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--state-dir", type=Path, default=None, help=f"pid and log folder ({default_state_dir()})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server to start")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the warm-up write on a made-up month")
    args = parser.parse_args(argv)
    server = SparkConnectServer(args.port, args.state_dir)
    if args.command == "start":
        from crypto_assets.settings import Settings, SettingsError

        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            print(f"spark_server: {exc}", file=sys.stderr)
            return 2
        began = time.monotonic()
        try:
            started = server.start(spark_conf(settings.spark_master, settings.spark_conf), settings.spark_class_cache,
                                   timeout=args.timeout, warm=not args.no_warm_up)  # fmt: skip
        except SparkServerError as exc:
            print(f"spark_server: {exc}", file=sys.stderr)
            return 1
        what = f"started in {time.monotonic() - began:.1f} s" if started else "already running"
        print(f"Spark Connect server {what} (pid {server.pid()}, log {server.log_file})", file=sys.stderr)
        print(f"export SPARK_REMOTE={server.url}")
        return 0
    if args.command == "stop":
        stopped = server.stop()
        print(f"Spark Connect server on {server.url} {'stopped' if stopped else 'was not running'}", file=sys.stderr)
        return 0
    pid = server.pid()
    if pid is not None and port_open(HOST, server.port):
        print(f"running: {server.url} (pid {pid}, log {server.log_file})")
        return 0
    print(f"not running: {server.url}" + (f" (pid {pid} is not answering yet)" if pid else ""))
    return 3


if __name__ == "__main__":
    sys.exit(main())
