"""The Spark driver JVM's class-data archive: written by the first JVM at its exit, promoted only once that JVM has
exited, mapped by every later driver JVM, and never in the way of Spark (a damaged archive is simply not used).

Each JVM here is started in its own Python process, as a Dagster run process starts it (the suite's own JVM lives
until the suite ends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto_assets.lake.jvm_classes import ClassArchive, default_folder

pytestmark = pytest.mark.slow

# Starts the project's session with the archive in argv[1], runs a job, and says whether the JVM mapped the archive.
_SESSION = """
import json, sys
from crypto_assets.lake.jvm_classes import ClassArchive
from crypto_assets.lake.spark import build_session, spark_conf
archive = ClassArchive.at(sys.argv[1])
session = build_session(spark_conf("local[1]"), archive)
count = session.range(1000).where("id % 7 = 0").count()
pid = session._jvm.java.lang.ProcessHandle.current().pid()
maps = open(f"/proc/{pid}/maps").read()
print(json.dumps({"count": count, "mapped": str(archive.archive) in maps, "wrote_part": archive.part is not None,
                  "jvm": pid}))
"""


def start_session(folder: Path) -> dict:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-c", _SESSION, str(folder)], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[cds]" not in done.stdout + done.stderr  # the JVM's archive messages are kept out of run logs
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"JVM {pid} still running"
        time.sleep(0.2)


def test_first_jvm_writes_the_archive_and_later_ones_map_it(tmp_path):
    folder = tmp_path / "classes"
    first = start_session(folder)
    assert first == {**first, "count": 143, "mapped": False, "wrote_part": True}
    wait_gone(first["jvm"])  # the JVM writes the archive as it exits, after its Python process
    archive = ClassArchive.at(folder).archive
    assert not archive.exists() and len(list(folder.glob("*.part"))) == 1

    second = start_session(folder)  # promotes the finished part, then maps it
    assert second == {**second, "count": 143, "mapped": True, "wrote_part": False}
    assert archive.stat().st_size > 10_000_000 and sorted(p.name for p in folder.iterdir()) == [archive.name]


def test_a_damaged_archive_is_not_used_and_spark_still_runs(tmp_path):
    """E.g. a JVM killed while writing it: Spark runs without it, and the archive is dropped to be written anew."""
    folder = tmp_path / "classes"
    archive = ClassArchive.at(folder).archive
    folder.mkdir()
    archive.write_bytes(b"not a class-data archive" * 1000)
    result = start_session(folder)
    assert result == {**result, "count": 143, "mapped": False, "wrote_part": False}
    assert not archive.exists()
    assert start_session(folder)["wrote_part"] is True


def test_a_part_is_promoted_only_after_its_jvm_has_exited(tmp_path):
    archive = ClassArchive.at(tmp_path)
    part = tmp_path / f"driver-{archive.key}.123.456.part"
    part.write_bytes(b"x" * 100)
    part.with_suffix(".jvm").write_text(str(os.getpid()))  # a live process: still writing
    archive.promote_finished()
    assert part.exists() and not archive.archive.exists()

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    part.with_suffix(".jvm").write_text(str(gone.pid))
    archive.promote_finished()
    assert archive.archive.read_bytes() == b"x" * 100 and list(tmp_path.iterdir()) == [archive.archive]


def test_off_disables_it_and_the_default_is_the_user_cache(monkeypatch, tmp_path):
    assert ClassArchive.at("off") is None and ClassArchive.at(" OFF ") is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_folder() == tmp_path / "crypto_assets" / "spark-classes"
    assert ClassArchive.at(None).folder == default_folder()
