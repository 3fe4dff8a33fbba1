"""External programs the reports use: headless Chromium and the Allure CLI.

Neither is a dependency of a run: the HTML report is written without them.
Chromium renders it (``conformance report --screenshot``, and the harness's
own test that the HTML really renders); the Allure CLI turns the
allure-pytest results into a site (``conformance report --allure-html``).
When one is missing the caller gets a :class:`HarnessError` that says what
was looked for and how to install it — never a silent skip.

Both run as :class:`ManagedProcess` (own process group, stopped in
``finally``) under a bounded wait.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance._exceptions import HarnessError
from conformance._process import ManagedProcess
from conformance._wait import wait_until

__all__ = [
    "ALLURE_ENV",
    "CHROMIUM_ENV",
    "CHROMIUM_HINT",
    "allure_generate",
    "chromium_dump_dom",
    "chromium_screenshot",
    "find_allure",
    "find_chromium",
]

#: Environment variable naming the Chromium binary (else ``chromium``, ``chromium-browser``,
#: ``google-chrome`` on PATH).
CHROMIUM_ENV = "OBSCONFORM_CHROMIUM"
#: Environment variable naming the Allure CLI (else ``allure`` on PATH).
ALLURE_ENV = "OBSCONFORM_ALLURE"

CHROMIUM_HINT = (
    "install Debian's chromium (apt-get install -y --no-install-recommends chromium), "
    f"or point {CHROMIUM_ENV} at a Chromium/Chrome binary"
)
ALLURE_HINT = (
    "install the Allure CLI with npm (npm install -g allure-commandline; it needs Java 8+, e.g. Debian's "
    f"default-jre-headless), or point --allure-bin / {ALLURE_ENV} at the `allure` script"
)

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags for a hermetic, offline, one-shot render (no sandbox: CI containers run as root).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium binary to use; :class:`HarnessError` with an install hint when there is none."""
    candidates = [explicit] if explicit else [os.environ.get(CHROMIUM_ENV, ""), *_CHROMIUM_NAMES]
    for name in candidates:
        if name and (found := shutil.which(name)):
            return found
    looked = explicit or f"${CHROMIUM_ENV}, " + ", ".join(_CHROMIUM_NAMES)
    raise HarnessError(f"no headless Chromium found (looked for {looked})", hint=CHROMIUM_HINT)


def find_allure(explicit: str | None = None) -> str:
    """The Allure CLI to use; :class:`HarnessError` with an install hint when there is none."""
    candidates = [explicit] if explicit else [os.environ.get(ALLURE_ENV, ""), "allure"]
    for name in candidates:
        if name and (found := shutil.which(name)):
            return found
    looked = explicit or f"${ALLURE_ENV}, allure on PATH"
    raise HarnessError(f"the Allure CLI was not found (looked for {looked})", hint=ALLURE_HINT)


@dataclass(frozen=True, slots=True)
class _Finished:
    code: int
    stdout: str
    stderr: str


def _run(name: str, argv: list[str], workdir: Path, timeout: float, what: str) -> _Finished:
    """Run ``argv`` to completion as a ManagedProcess within ``timeout`` seconds."""
    proc = ManagedProcess(
        name,
        argv,
        stdout_path=workdir / f"{name}.stdout",
        stderr_path=workdir / f"{name}.stderr",
        cwd=workdir,
    )
    try:
        proc.start()
    except OSError as exc:
        raise HarnessError(f"cannot start {argv[0]}: {exc.strerror}") from None
    try:
        code = wait_until(
            lambda: (proc.poll(), "still running"), awaited=what, timeout=timeout, max_interval=0.2
        )
    finally:
        proc.stop(timeout=2)
    out = (workdir / f"{name}.stdout").read_text(encoding="utf-8", errors="replace")
    err = (workdir / f"{name}.stderr").read_text(encoding="utf-8", errors="replace")
    return _Finished(code, out, err)


def _chromium(html: Path, extra: list[str], binary: str | None, timeout: float, what: str) -> _Finished:
    chromium = find_chromium(binary)
    with tempfile.TemporaryDirectory(prefix="obsconform-chromium-") as tmp:
        argv = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", *extra, html.resolve().as_uri()]
        done = _run("chromium", argv, Path(tmp), timeout, what)
    if done.code != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[-400:]
        raise HarnessError(f"{chromium} exited with code {done.code} while {what}: {tail}")
    return done


def chromium_dump_dom(html: Path, *, binary: str | None = None, timeout: float = 60.0) -> str:
    """The DOM Chromium built from ``html`` (after parsing, CSS and any script), serialised."""
    return _chromium(html, ["--dump-dom"], binary, timeout, f"rendering {html.name}").stdout


def chromium_screenshot(
    html: Path,
    png: Path,
    *,
    binary: str | None = None,
    width: int = 1280,
    height: int = 2000,
    timeout: float = 60.0,
) -> Path:
    """A PNG of ``html`` rendered in a ``width`` by ``height`` window."""
    png.parent.mkdir(parents=True, exist_ok=True)
    extra = [f"--screenshot={png.resolve()}", f"--window-size={width},{height}"]
    _chromium(html, extra, binary, timeout, f"taking a screenshot of {html.name}")
    if not png.is_file() or png.stat().st_size == 0:
        raise HarnessError(f"chromium wrote no screenshot to {png}")
    return png


def allure_generate(
    results: Path, out: Path, *, binary: str | None = None, single_file: bool = False, timeout: float = 180.0
) -> Path:
    """``allure generate results -o out --clean``; the site's index.html."""
    allure = find_allure(binary)
    argv = [allure, "generate", str(results.resolve()), "-o", str(out.resolve()), "--clean"]
    if single_file:
        argv.append("--single-file")
    with tempfile.TemporaryDirectory(prefix="obsconform-allure-") as tmp:
        done = _run("allure", argv, Path(tmp), timeout, "allure generate")
    index = out / "index.html"
    if done.code != 0 or not index.is_file():
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])[-400:]
        hint = ALLURE_HINT if "java" in tail.lower() or "JAVA_HOME" in tail else ""
        raise HarnessError(
            f"allure generate failed (exit code {done.code}): {tail or 'no output'}", hint=hint
        )
    return index
