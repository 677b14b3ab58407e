"""A real Spark standalone cluster on 127.0.0.1 - one master, one worker - started from the pyspark package.

    with StandaloneCluster(tmp_path) as cluster:
        os.environ["SPARK_MASTER"] = cluster.master_url   # spark://127.0.0.1:PORT

Both daemons are plain child processes (``spark-class ...Master`` / ``...Worker``), stopped by their PID on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyspark
import requests

SPARK_HOME = Path(pyspark.__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneCluster:
    def __init__(self, work_dir: Path, cores: int = 2, memory: str = "1g", timeout: float = 90.0):
        self.work_dir = Path(work_dir)
        self.cores, self.memory, self.timeout = cores, memory, timeout
        self.port, self.ui_port, self.worker_ui_port = _free_port(), _free_port(), _free_port()
        self.processes: list[subprocess.Popen] = []

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def state(self) -> dict:
        """The master's status page as JSON: workers, active and completed applications."""
        return requests.get(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5).json()

    def __enter__(self) -> StandaloneCluster:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_LOG_DIR": str(self.work_dir), "SPARK_NO_DAEMONIZE": "1"}  # fmt: skip
        spark_class = str(SPARK_HOME / "bin" / "spark-class")
        try:
            self._start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                         "--port", str(self.port), "--webui-port", str(self.ui_port)], env, "master.log")  # fmt: skip
            self._wait(lambda s: True, "master")
            self._start([spark_class, "org.apache.spark.deploy.worker.Worker", self.master_url,
                         "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
                         "--webui-port", str(self.worker_ui_port), "--work-dir", str(self.work_dir / "work")],
                        env, "worker.log")  # fmt: skip
            self._wait(lambda s: any(w.get("state") == "ALIVE" for w in s.get("workers", [])), "worker")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, command: list[str], env: dict, log: str) -> None:
        with open(self.work_dir / log, "wb") as out:
            self.processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"Spark {what} exited with {dead[0].returncode}; see logs in {self.work_dir}")
            try:
                if ready(self.state()):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Spark {what} not ready after {self.timeout:.0f} s; see logs in {self.work_dir}")

    def stop(self) -> None:
        """SIGTERM each daemon by PID (worker first), SIGKILL what is still there after 20 s."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
