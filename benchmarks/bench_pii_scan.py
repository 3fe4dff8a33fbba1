"""PII-scan throughput on a generated log file, next to ``grep -E`` with the same patterns.

    python benchmarks/bench_pii_scan.py [--size-mb 100] [--leak-every 500] [--seed 1]

Writes a JSON-lines log file shaped like the reference service's output
(request records with uuids and hex trace ids and their durations as floats
at full precision, the way structlog writes them, redacted login and chat
records, tracebacks) into a temporary directory, with a leak planted every
``--leak-every`` lines: a canary whole, a fragment or an encoding of one, or
real-looking PII nobody sent (a card number under a card network's prefix,
an E.164 phone, an email, an SSN in the issued ranges). The durations' digits
pass Luhn now and then; a detector that reports them as card numbers shows
up as more "unknown PII" found than planted. Then, in the same run and on the
same file:

* **ours**: the PII suite's own path, ``read_log_lines`` (the session's log
  reader) → ``log_texts`` → ``PiiScanner.scan`` with the canaries of one run
  of the reference profile (every form: ~1,000 texts in one trie regex) and
  every detector, including validation (Luhn, SSN ranges, JWT headers) and
  field attribution for each hit;
* **grep -E**: GNU grep with the same patterns in one file (``-f``): each
  canary form as an escaped literal, and each detector pattern in POSIX ERE.
  ERE has no look-around, possessive quantifiers or validation, so grep's
  detector patterns are the closest ERE spellings (documented below) and
  grep reports every candidate, valid or not.

Prints a table (seconds, CPU seconds, MiB/s, matches), the ratio of grep's
time to ours (the goal: at least 0.5 against ``grep -E -o``), and recall by
line: every line with a planted leak that grep matches must hold a hit of
ours. Exits 0; the temporary directory is deleted at the end. Speed is
reported, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance import load_profile  # noqa: E402
from conformance._mask import luhn_check_digit  # noqa: E402
from conformance._sections.pii import KEY, DetectorConfig  # noqa: E402
from conformance.checks import pii  # noqa: E402
from conformance.collect._canaries import Canary, CanaryGenerator, plan_injection  # noqa: E402
from conformance.collect._logs import read_log_lines  # noqa: E402

PROFILE = REPO / "fixtures/reference_service/conformance.yaml"

#: The detectors in POSIX ERE (GNU grep -E): the shapes of conformance._mask.PII_PATTERNS.
#: ERE has no look-around, so a "not after a word character" edge is spelled as a consumed
#: character or the line start; there is no validation (Luhn, SSN ranges, JWT headers).
_EDGE_BEFORE = "(^|[^[:alnum:]_-])"
_EDGE_AFTER = "([^[:alnum:]_-]|$)"
#: A digit run is not after "+" or "." either (a signed or decimal number; ERE cannot
#: say "after a digit and a dot" only).
_DIGITS_BEFORE = "(^|[^[:alnum:]_.+-])"
GREP_DETECTORS = (
    r"[^][[:space:]@\"<>(),;:\\]+@[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}",  # email
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",  # jwt
    r"\b([Bb][Ee][Aa][Rr][Ee][Rr]|[Bb][Aa][Ss][Ii][Cc])[[:space:]]+[A-Za-z0-9._~+/=-]{6,}",  # bearer
    r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}",  # api key
    _EDGE_BEFORE + r"[0-9]{3}-[0-9]{2}-[0-9]{4}" + _EDGE_AFTER,  # ssn
    "(^|[^[:alnum:]_+])"
    + r"(\+?1[ .-]?)?(\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}"
    + _EDGE_AFTER,
    _DIGITS_BEFORE + r"\+?[0-9]([ -]?[0-9]){7,}" + _EDGE_AFTER,  # digit runs: cards, E.164 phones
)


def _ere_literal(text: str) -> str:
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", text)


#: Card network prefixes and lengths for the planted cards: Visa, Mastercard (both
#: series), American Express, Discover.
_CARD_SHAPES = (("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
                ("6011", 16), ("65", 16))  # fmt: skip


def _luhn_card(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARD_SHAPES)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - 1 - len(prefix)))
    return body + luhn_check_digit(body)


def generate(
    path: Path,
    size: int,
    leak_every: int,
    canaries: list[Canary],
    seed: int,
    lines_planted: list[int] | None = None,
) -> dict[str, int]:
    """Write ~``size`` bytes of log lines to ``path``; return how many leaks of each sort were planted
    (and append the line number of each to ``lines_planted``)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    routes = ["/health", "/health/live", "/models", "/settings", "/users/{user_id}", "/auth/login"]
    traceback = json.dumps(
        'Traceback (most recent call last):\n  File "/srv/app/routes.py", line 212, in error\n'
        '    raise DeliberateFailure("deliberate failure from GET /error")\n'
        "reference_service.routes.DeliberateFailure: deliberate failure from GET /error"
    )
    by_kind: dict[str, list[Canary]] = {}
    for canary in canaries:
        by_kind.setdefault(canary.kind, []).append(canary)

    def leak() -> tuple[str, str]:
        sort = rng.choice(["canary", "canary", "fragment", "encoded", "unknown", "unknown"])
        if sort == "canary":
            canary = rng.choice(by_kind[rng.choice(["email", "jwt", "bearer", "api_key", "phone"])])
            return sort, canary.value
        if sort == "fragment":
            card = rng.choice(by_kind["card"])
            return sort, f"card ending {card.value[-8:]}"
        if sort == "encoded":
            email = rng.choice(by_kind["email"])
            return sort, base64.b64encode(f"user:{email.value}".encode()).decode()
        shape = rng.choice(["email", "card", "phone", "ssn"])
        value = {
            "email": f"user{rng.randint(1, 10**6)}@corp.example.io",
            "card": _luhn_card(rng),
            "phone": f"+44 20 7946 {rng.randint(0, 9999):04d}",
            "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        }[shape]
        return sort, value

    planted: dict[str, int] = {"canary": 0, "fragment": 0, "encoded": 0, "unknown": 0}
    written = 0
    number = 0
    with path.open("w", encoding="utf-8") as f:
        while written < size:
            lines = []
            for _ in range(10_000):
                number += 1
                base = (
                    f'{{"timestamp": "2025-12-06T10:{number // 60000 % 60:02d}:{number // 1000 % 60:02d}.'
                    f'{number % 1000:03d}Z", "level": "INFO", "logger": "reference_service.middleware", '
                    f'"correlation_id": "{uuid.UUID(int=rng.getrandbits(128), version=4)}", '
                    f'"trace_id": "{rng.getrandbits(128):032x}", "span_id": "{rng.getrandbits(64):016x}", '
                )
                if number % leak_every == 0:
                    sort, text = leak()
                    planted[sort] += 1
                    if lines_planted is not None:
                        lines_planted.append(number)
                    lines.append(base + f'"message": "note", "detail": "{text}"}}')
                    continue
                pick = number % 10
                if pick < 6:
                    lines.append(
                        base
                        + f'"message": "request_completed", "method": "GET", "path": "{rng.choice(routes)}", '
                        f'"status_code": 200, "duration_ms": {rng.random() * 50!r}}}'
                    )
                elif pick < 8:
                    lines.append(
                        base + '"message": "login_attempt", "email": "[REDACTED_EMAIL]", "success": true}'
                    )
                elif pick < 9:
                    lines.append(
                        base
                        + '"message": "chat_completion_requested", "model": "fake-small", "message_count": 1,'
                        " "
                        '"prompt": "Hi, I\'m [REDACTED_EMAIL], call me on [REDACTED_PHONE]. My card is '
                        '[REDACTED_CC] and my key is [REDACTED]."}'
                    )
                else:
                    lines.append(
                        base.replace('"level": "INFO"', '"level": "ERROR"')
                        + f'"message": "unhandled_exception", "path": "/error", "exc_info": {traceback}}}'
                    )
            chunk = "\n".join(lines) + "\n"
            f.write(chunk)
            written += len(chunk)
    return planted


def run_ours(
    path: Path, canaries: list[Canary], detectors: DetectorConfig
) -> tuple[dict[str, float], set[int]]:
    cpu_started = time.process_time()
    started = time.perf_counter()
    lines = read_log_lines(path, stream="stdout", max_line_bytes=1024 * 1024, final=True)
    read = time.perf_counter() - started
    scanner = pii.PiiScanner(canaries, detectors)
    compiled = time.perf_counter() - started - read
    hits = scanner.scan(pii.log_texts(lines))
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    sorts = {
        "canary": sum(1 for h in hits if h.full),
        "partial": sum(1 for h in hits if h.canary is not None and not h.full),
        "unknown": sum(1 for h in hits if h.canary is None),
    }
    hit_lines = {int(h.location.rsplit(" ", 1)[1]) for h in hits}  # "stdout line N"
    return ({"read": read, "compile": compiled, "scan": total - read - compiled, "total": total, "cpu": cpu,
             "lines": len(lines), "hits": len(hits), **sorts}, hit_lines)  # fmt: skip


def run_grep(path: Path, patterns: Path, *flags: str) -> tuple[dict[str, float], set[int]]:
    env = {**os.environ, "LC_ALL": "C"}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        ["grep", "-E", *flags, "-f", str(patterns), str(path)], capture_output=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"grep failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
    out = proc.stdout.decode(errors="replace")
    matches = int(out.strip() or 0) if "-c" in flags else out.count("\n")
    lines = {int(line.split(":", 1)[0]) for line in out.splitlines()} if "-n" in flags else set()
    return {"total": elapsed, "cpu": cpu, "hits": matches}, lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=100.0, help="size of the generated log file (100)")
    parser.add_argument("--leak-every", type=int, default=500, help="plant a leak every N lines (500)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("grep") is None:
        raise SystemExit("grep is not installed")

    profile = load_profile(PROFILE)
    plan = plan_injection(
        profile.endpoints, profile.section(KEY).injection, CanaryGenerator(f"bench-{args.seed}")
    )
    canaries = list(plan.canaries)
    detectors = profile.section(KEY).detectors
    forms = sorted({form.text for canary in canaries for form in canary.forms()})

    with tempfile.TemporaryDirectory(prefix="obsconform-pii-bench-") as tmp:
        log = Path(tmp) / "service.log"
        started = time.perf_counter()
        planted_lines: list[int] = []
        planted = generate(
            log, int(args.size_mb * 1024 * 1024), args.leak_every, canaries, args.seed, planted_lines
        )
        size = log.stat().st_size
        print(f"generated {size / 2**20:.0f} MiB in {time.perf_counter() - started:.1f}s: "
              f"{sum(planted.values())} planted leaks {planted}", flush=True)  # fmt: skip
        patterns = Path(tmp) / "patterns.ere"
        patterns.write_text("\n".join([*(_ere_literal(f) for f in forms), *GREP_DETECTORS]) + "\n")

        ours, our_lines = run_ours(log, canaries, detectors)
        grep_o, grep_lines = run_grep(log, patterns, "-o", "-n")
        grep_c, _ = run_grep(log, patterns, "-c")
    # the temporary directory (and the 200 MB file) is gone here

    mib = size / 2**20
    version = subprocess.run(["grep", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"\n{platform.python_implementation()} {platform.python_version()}, {version}, "
          f"{os.cpu_count()} CPU(s); {ours['lines']:,.0f} lines, {len(canaries)} canaries = {len(forms)} "
          f"texts + {len(GREP_DETECTORS)} detector patterns\n")  # fmt: skip
    rows = [
        ("ours: read + scan", "read_log_lines + PiiScanner.scan", ours["total"], ours["cpu"], ours["hits"]),
        ("ours: scan only", "tries, detectors, validation, field paths", ours["scan"], None, ours["hits"]),
        ("grep -E -o -n", "every match, no validation", grep_o["total"], grep_o["cpu"], grep_o["hits"]),
        ("grep -E -c", "lines with a match", grep_c["total"], grep_c["cpu"], grep_c["hits"]),
    ]
    print(f"| {'tool':<18} | {'what':<48} | {'seconds':>8} | {'CPU s':>6} | {'MiB/s':>7} | {'matches':>8} |")
    print(f"|{'-' * 20}|{'-' * 50}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 10}|")
    for tool, what, seconds, cpu, hits in rows:
        cpu_text = "-" if cpu is None else f"{cpu:.2f}"
        print(f"| {tool:<18} | {what:<48} | {seconds:>8.2f} | {cpu_text:>6} | {mib / seconds:>7.1f} "
              f"| {hits:>8,.0f} |")  # fmt: skip
    for name, grep in (("grep -E -o", grep_o), ("grep -E -c", grep_c)):
        print(f"ratio {name} / ours (read + scan) = {grep['total'] / ours['total']:.2f}x wall clock, "
              f"{grep['cpu'] / ours['cpu']:.2f}x CPU time")  # fmt: skip
    found_by_grep = set(planted_lines) & grep_lines
    missed = sorted(found_by_grep - our_lines)
    print(f"recall: grep matches {len(found_by_grep)} of the {len(planted_lines)} lines with a planted leak; "
          f"ours hits {len(found_by_grep & our_lines)} of those"
          + (f" (MISSED lines {missed[:10]})" if missed else " (all)"))  # fmt: skip
    print(f"\nours: read {ours['read']:.2f}s, trie compile {ours['compile']:.2f}s; "
          f"found {ours['canary']:.0f} whole "
          f"canaries, {ours['partial']:.0f} fragments/encodings, {ours['unknown']:.0f} unknown PII "
          f"(planted: {planted}); grep's matches include candidates that fail validation "
          "(Luhn, SSN ranges, ids) and the planted values' sub-matches.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
