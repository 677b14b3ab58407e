"""The Dagster UI in a real browser (headless Debian chromium through Playwright), the way a user clicks it.

One `dagster dev` + stand-in for the module; pair_universe is materialized over GraphQL first so that the monthly
assets can run. Screenshots go to test-artifacts/ at the repo root (one per step, and one on failure).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crypto_assets_tests.binance_standin import Market, StandIn
from crypto_assets_tests.dagster_dev import REPO_ROOT, DagsterDev, pipeline_env

pytestmark = pytest.mark.e2e

MONTHS = ["2025-01", "2025-02", "2025-03"]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
ASSETS = ["pair_universe", "raw_monthly_klines", "normalized_csv", "parquet_candles", "dataset_report"]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 60_000


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("chromium is not installed: the browser tests drive Debian's chromium. Run `make setup-test` "
                    "(apt-get install chromium); never `playwright install`.")  # fmt: skip
    return path


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[DagsterDev]:
    workdir = tmp_path_factory.mktemp("ui_browser")
    with StandIn(Market.default(), page_size=5) as standin:
        with DagsterDev(workdir, pipeline_env(standin.env(), workdir / "data", MONTHS, SYMBOLS)) as dev:
            run_id = dev.launch_run(["pair_universe"])
            assert dev.wait_run(run_id, timeout=120) == "SUCCESS", dev.run_errors(run_id)
            yield dev


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


@contextmanager
def screenshot_on_failure(page, name: str):
    try:
        yield
    except BaseException:
        shot(page, f"{name}-FAILED")
        raise


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_lineage_shows_the_five_assets(dev: DagsterDev, page):
    with screenshot_on_failure(page, "lineage"):
        page.goto(f"{dev.url}/asset-groups")
        page.get_by_text("Global asset lineage").first.wait_for()
        for group in ["ingestion", "warehouse", "reporting"]:
            page.get_by_text(group, exact=True).first.wait_for()
        # Several groups start collapsed; a user expands them from the graph's settings menu.
        page.locator("button:has([aria-label=zoom_in])").wait_for()
        page.locator("button:has([aria-label=settings])").last.click()
        page.get_by_role("menuitem", name="Expand all groups").click()
        page.keyboard.press("Escape")
        page.get_by_role("menuitem").first.wait_for(state="hidden")  # the menu fades out; don't photograph it
        for asset in ASSETS:
            # the sidebar's group tree stays collapsed: an asset name on the page is a node of the graph
            page.get_by_text(asset, exact=True).first.wait_for()  # fails after TIMEOUT_MS when it is not shown
        shot(page, "lineage")


def test_asset_page_shows_description_kinds_code_and_checks(dev: DagsterDev, page):
    with screenshot_on_failure(page, "asset-page"):
        page.goto(f"{dev.url}/assets/parquet_candles")
        page.get_by_text("OHLCV candles as Snappy Parquet", exact=False).first.wait_for()  # the asset's description
        for text in ["Parquet", "Spark", "warehouse", "parquet.py", "normalized_csv", "dataset_report"]:
            page.get_by_text(text, exact=True).first.wait_for()  # kinds, group, source link, lineage
        shot(page, "asset-overview")

        page.get_by_text("Checks", exact=True).first.click()  # the tab
        page.get_by_text("Checks (5)", exact=True).first.wait_for()
        for check in ["counts_match_csv", "open_times_on_grid", "no_duplicate_candles", "ohlc_sane",
                      "complete_between_first_and_last"]:
            # long names are middle-truncated in the list (a hidden copy measures them): type it in the filter box
            page.get_by_placeholder("Filter checks").fill(check)
            page.get_by_text(check, exact=True).filter(visible=True).first.wait_for()
        page.get_by_placeholder("Filter checks").fill("")
        page.get_by_text("counts_match_csv", exact=True).first.click()
        page.get_by_text("This is a blocking asset check", exact=False).first.wait_for()
        shot(page, "asset-checks")


def test_materialize_one_month_from_the_partitions_page(dev: DagsterDev, page):
    month = "2025-02"
    with screenshot_on_failure(page, "materialize-one-month"):
        page.goto(f"{dev.url}/assets/raw_monthly_klines?view=partitions")
        page.get_by_text(month, exact=True).first.wait_for()
        shot(page, "partitions-before")

        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Launch runs to materialize raw_monthly_klines").wait_for()
        selection = dialog.get_by_placeholder("2025-01", exact=False)
        selection.fill(month)
        selection.press("Enter")
        dialog.get_by_text("1 partition", exact=True).wait_for()
        shot(page, "materialize-dialog")
        dialog.get_by_role("button", name="Launch 1 run").click()
        page.get_by_text("Launched run").first.wait_for()

        run_id = wait_for_partition_run(dev, "raw_monthly_klines", month)
        status = dev.wait_run(run_id, timeout=300)
        assert status == "SUCCESS", dev.run_errors(run_id)

        page.goto(f"{dev.url}/runs/{run_id}")
        page.get_by_text("Success", exact=True).first.wait_for()
        shot(page, "run-success")

        page.goto(f"{dev.url}/assets/raw_monthly_klines?view=partitions")
        page.get_by_text("Materialized (1)").wait_for()
        shot(page, "partitions-after")


def wait_for_partition_run(dev: DagsterDev, asset: str, month: str, timeout: float = 60) -> str:
    """The run the UI launched for ``month`` of ``asset`` (one run, no backfill, for a single partition)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = dev.graphql(
            """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
                 runId assetSelection { path } } } } }""",
            {"tags": [{"key": "dagster/partition", "value": month}]},
        )["runsOrError"]["results"]
        runs = [r for r in runs if [a["path"][-1] for a in r["assetSelection"]] == [asset]]
        if runs:
            assert len(runs) == 1, f"one click launched {len(runs)} runs"
            return runs[0]["runId"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no run for {asset} {month} appeared within {timeout:.0f} s")
        time.sleep(1)
