"""`make demo`: the local Binance stand-in (SYNTHETIC data) and the Dagster UI pointed at it, fully offline.

    python -m crypto_assets_tests.demo --host 127.0.0.1 --port 3000 [--pairs 36] [--start-month 2025-01 ...]

Everything the demo writes stays apart from real data: the lake goes to ./data/demo and the Dagster instance to
./.dagster_home/demo (so synthetic materializations never show up in the history of `make ui`); --data-dir and
--dagster-home move them. CRYPTO_DEMO=1 is set for the pipeline as a marker that it is looking at synthetic data.
The runs share one Spark Connect server (its pid and log under the demo's DAGSTER_HOME/spark-connect).
Ctrl-C (or SIGTERM, e.g. `kill <pid>` from a script) stops the UI, the daemon, any run, the Spark server and the
stand-in.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from crypto_assets.lake.spark import spark_conf
from crypto_assets.lake.spark_server import SparkConnectServer, SparkServerError
from crypto_assets_tests.binance_standin import Market, StandIn
from crypto_assets_tests.dagster_dev import REPO_ROOT, DagsterDev, DagsterDevError, _describe, free_port, pipeline_env

DATA_DIR = REPO_ROOT / "data" / "demo"
DAGSTER_HOME = REPO_ROOT / ".dagster_home" / "demo"
BANNER = "SYNTHETIC DATA - local Binance stand-in, not real market data"
READY = "DEMO READY"  # the line a script (or the test) waits for


def demo_env(standin: StandIn, data_dir: Path, start_month: str, end_month: str, spark_remote: str) -> dict[str, str]:
    """The process environment with the pipeline pointed at the stand-in, the demo lake and the demo's Spark Connect
    server, marked as a demo."""
    return pipeline_env(standin.env(), data_dir, [start_month, end_month], CRYPTO_DEMO="1", SPARK_REMOTE=spark_remote)


def banner(lines: list[str]) -> str:
    width = max(len(line) for line in lines) + 4
    rule = "=" * width
    return "\n".join([rule, *(f"  {line}" for line in lines), rule])


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--pairs", type=int, default=36, help="synthetic USDT pairs (default 36)")
    parser.add_argument("--start-month", default="2025-01", help="first month partition (default 2025-01)")
    parser.add_argument("--end-month", default="2025-03", help="last month partition (default 2025-03)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"the demo lake (default {DATA_DIR})")
    parser.add_argument("--dagster-home", type=Path, default=DAGSTER_HOME,
                        help=f"the demo's Dagster instance (default {DAGSTER_HOME})")  # fmt: skip
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    began = time.monotonic()
    market = Market.synthetic(args.pairs, args.start_month, args.end_month)
    data_dir, home = args.data_dir.resolve(), args.dagster_home.resolve()
    # The runs share one Spark Connect server (as under `make ui`), on a free port so a `make ui` can run beside.
    spark_server = SparkConnectServer(free_port(), home / "spark-connect")
    with StandIn(market, port=0) as standin:
        env = demo_env(standin, data_dir, args.start_month, args.end_month, spark_server.url)
        dev = DagsterDev(home.parent, env, host=args.host, port=args.port, home=home, log_to_stdout=True)
        print(banner([
            BANNER,
            f"{len(market.pairs)} made-up USDT pairs, months {args.start_month}..{args.end_month} (CRYPTO_DEMO=1)",
            f"stand-in: {standin.data_url}   (BINANCE_DATA_URL, BINANCE_LISTING_URL, BINANCE_API_URL)",
            f"lake: {data_dir}",
            f"Spark Connect server: {spark_server.url}   (SPARK_REMOTE)",
            f"DAGSTER_HOME: {home}",
            f"starting the Dagster UI on {dev.url} - Ctrl-C stops everything",
        ]), flush=True)  # fmt: skip
        try:
            spark_server.start(spark_conf())
            dev.start()
            dev.wait_ready()
            print(banner([
                f"{READY} in {time.monotonic() - began:.0f} s: {dev.url}   ({BANNER})",
                "Lineage -> 'Materialize all' (pair_universe first), or an asset's Partitions tab -> Materialize",
            ]), flush=True)  # fmt: skip
            code = dev.process.wait()
            print(f"demo: dagster dev exited on its own (code {code})", file=sys.stderr)
            return code or 1
        except (DagsterDevError, SparkServerError) as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ndemo: stopping dagster dev and the stand-in ...", flush=True)
            return 0
        finally:
            # A second Ctrl-C must not cut the stop short and leave processes behind; stop() is bounded and ends
            # with SIGKILL for anything that outlived it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            report = dev.stop()
            spark_server.stop()
            if report.survivors:
                print(f"demo: killed processes that outlived the stop:\n{_describe(report.survivors)}",
                      file=sys.stderr)  # fmt: skip
            elif report.processes:
                print(f"demo: stopped in {report.seconds:.1f} s, no process left", flush=True)


if __name__ == "__main__":
    sys.exit(main())
