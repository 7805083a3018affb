"""Why a file is in status error: the reasons both backends give, worded once.

A file's ``error_message`` follows one rule in both backends: every change of its status to
``error`` sets one of these reasons (or an administrator's), every change to another status
clears it. The activity entry of the same event says it again, for the history; this text is
what the file itself carries, so the console can show it without searching the history.
"""

from __future__ import annotations

# A file already in error when its backend began to keep reasons (the server's migration 5 says
# the same, in its own frozen text, when the activity history holds nothing better).
REASON_NOT_RECORDED = "marked error before reasons were recorded: verify the file to see why"
# How a scrub's problem reads after "stored content (sha256 …)"; damaged content names its hash.
_SCRUB_PROBLEMS = {"missing": "is missing", "unreadable": "cannot be read"}


def short_sha(sha256: str) -> str:
    return f"{sha256[:12]}…"


def verify_failed(expected: str, actual: str | None) -> str:
    """A verification's reason: what the stored content hashes to now, or that it is gone (``actual`` None)."""
    found = "the stored content is missing" if actual is None else f"stored content hashes to {short_sha(actual)}"
    return f"verification failed: expected sha256 {short_sha(expected)}, {found}"


def scrub_problem(sha256: str, problem: str, actual: str) -> str:
    """What a scrub found of a blob: ``problem`` is missing, unreadable or damaged (then ``actual`` is its hash)."""
    what = _SCRUB_PROBLEMS.get(problem, f"hashes to {short_sha(actual)}")
    return f"stored content (sha256 {short_sha(sha256)}) {what}"


def scrub_failed(sha256: str, problem: str, actual: str) -> str:
    return f"storage scrub: {scrub_problem(sha256, problem, actual)}"


def upload_interrupted(why: str) -> str:
    """An upload that never finished (the mock's: the server stopped, the client went away)."""
    return f"upload interrupted: {why}"
