"""`make ui`: the shared Spark Connect server, then `dagster dev` with its runs pointed at it; the server stops when
dagster dev exits (Ctrl-C included).

    python -m crypto_assets.serve [-h 127.0.0.1] [-p 3000] [--spark-port 15002]

With SPARK_REMOTE already in the environment nothing is started: a URL means an existing server or cluster, an empty
value keeps every run on its own local-mode Spark. A server that was already running on the port (`make spark`) is
used and left running.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from crypto_assets.lake.spark import spark_conf
from crypto_assets.lake.spark_server import DEFAULT_PORT, SparkConnectServer, SparkServerError
from crypto_assets.settings import Settings, SettingsError


def _default_signals() -> None:
    # A shell that started us in the background passes SIGINT down as ignored: dagster dev must still take Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--help", action="help")
    parser.add_argument("-h", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=3000)
    parser.add_argument("--spark-port", type=int, default=DEFAULT_PORT, help="the Connect server's port")
    args = parser.parse_args(argv)

    server, started = None, False
    env = dict(os.environ)
    if "SPARK_REMOTE" not in env:
        try:
            settings = Settings.from_env()
            server = SparkConnectServer(args.spark_port)
            started = server.start(spark_conf(settings.spark_master, settings.spark_conf), settings.spark_class_cache)
        except (SettingsError, SparkServerError) as exc:
            print(f"serve: {exc}", file=sys.stderr)
            return 1
        env["SPARK_REMOTE"] = server.url
        print(f"serve: Spark Connect server {'started' if started else 'already running'} at {server.url} "
              f"(log {server.log_file})", flush=True)  # fmt: skip
    dagster = Path(sys.executable).with_name("dagster")
    try:
        # Ctrl-C reaches dagster dev directly (same process group); we only wait for it to finish its own stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        process = subprocess.Popen([str(dagster), "dev", "-h", args.host, "-p", str(args.port)], env=env,
                                   preexec_fn=_default_signals)  # fmt: skip
        signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGINT))  # `kill <pid>`: a clean stop
        return process.wait()
    finally:
        if started:
            print(f"serve: stopping the Spark Connect server at {server.url}", flush=True)
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
