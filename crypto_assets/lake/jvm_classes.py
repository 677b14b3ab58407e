"""Class-data sharing (AppCDS) for the Spark driver JVM: the classes a run loads, archived once, mapped by later JVMs.

A Spark driver JVM loads and verifies some 15,000 classes before its first job finishes: on a 2-core machine about
2 s of the JVM start and another second of the first query. The JVM can dump the classes it loaded into an archive
when it exits (``-XX:ArchiveClassesAtExit``) and map that archive at the next start (``-XX:SharedArchiveFile``).
The first Spark run on a machine writes the archive; every later one starts from it.

The archive is valid for one JDK and one Spark class path, so its name carries a key of both. The JVM writes it
after the Python process that started it may already be gone, so it goes to a ``.part`` file first, with the JVM's
pid beside it; a later start promotes the part to the archive once that JVM has exited. A JVM that cannot use an
archive (another JDK, a damaged file) starts without it and says nothing (``-Xlog:cds*=off``): the archive only
ever changes how fast the JVM starts, never what Spark does. Delete the folder to have it rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from crypto_assets.lake.processes import process_alive

_QUIET = "-Xlog:cds*=off"
_STALE_PART_SECONDS = 3600  # a part whose JVM never reported its pid (killed at start)


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/crypto_assets/spark-classes`` (``~/.cache/...`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crypto_assets" / "spark-classes"


def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java and os.path.exists(java) else None


def runtime_key() -> str | None:
    """What an archive is valid for: the JDK that pyspark will launch and pyspark's own jars. None without java."""
    import pyspark

    java = _java_binary()
    if java is None:
        return None
    jars = Path(pyspark.__file__).parent / "jars"
    basis = [java, os.stat(java).st_mtime_ns, pyspark.__version__, str(jars), jars.stat().st_mtime_ns]
    return hashlib.sha256(repr(basis).encode()).hexdigest()[:16]


class ClassArchive:
    """The driver JVM's archive in ``folder``: which JVM options to start with, and what to record once started."""

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = Path(folder), key
        self.archive = self.folder / f"driver-{key}.jsa"
        self.part: Path | None = None
        self.mapping = False  # the JVM is told to map the archive

    @classmethod
    def at(cls, folder: str | os.PathLike | None) -> ClassArchive | None:
        """The archive for this machine's JDK and pyspark under ``folder`` (default: ``default_folder()``); None
        when ``folder`` is ``"off"`` or no java is found (Spark then fails with its own message)."""
        if folder is not None and str(folder).strip().lower() == "off":
            return None
        key = runtime_key()
        return None if key is None else cls(Path(folder) if folder else default_folder(), key)

    def java_options(self, write: bool = True) -> str:
        """Options for a new JVM on Spark's class path: map the archive if there is one, otherwise write one at exit
        (unless not ``write``: a long-running JVM, whose dump at exit would take longer than its stop may wait)."""
        self.promote_finished()
        if self.archive.is_file():
            self.mapping = True
            return f"-XX:SharedArchiveFile={self.archive} {_QUIET}"
        if not write:
            return ""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return ""  # an unwritable cache only costs speed
        self.part = self.folder / f"driver-{self.key}.{os.getpid()}.{time.time_ns()}.part"
        return f"-XX:ArchiveClassesAtExit={self.part} {_QUIET}"

    def started(self, jvm_pid: int) -> None:
        """Once the JVM runs: record its pid if it will write ``part`` at exit (promote_finished waits for it); if
        it was to map the archive and did not (a damaged file, e.g. a JVM killed while writing it), remove the
        archive so that the next JVM writes a new one. Linux shows what a process mapped; elsewhere this is skipped."""
        if self.part is not None:
            self.part.with_suffix(".jvm").write_text(str(jvm_pid))
        maps = Path(f"/proc/{jvm_pid}/maps")
        if self.mapping and maps.exists():
            try:
                mapped = str(self.archive) in maps.read_text()
            except OSError:
                return
            if not mapped:
                self.archive.unlink(missing_ok=True)

    def promote_finished(self) -> None:
        """Turn the part of a JVM that has exited into the archive (the first one wins; others are removed)."""
        for pid_file in sorted(self.folder.glob(f"driver-{self.key}.*.jvm")):
            part = pid_file.with_suffix(".part")
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
            if process_alive(pid):
                continue
            if part.is_file() and part.stat().st_size > 0 and not self.archive.exists():
                os.replace(part, self.archive)
            part.unlink(missing_ok=True)
            pid_file.unlink(missing_ok=True)
        for part in self.folder.glob(f"driver-{self.key}.*.part"):
            if not part.with_suffix(".jvm").exists() and time.time() - part.stat().st_mtime > _STALE_PART_SECONDS:
                part.unlink(missing_ok=True)

