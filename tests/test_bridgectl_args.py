"""bridgectl's argument parsing: bad input is a usage error (exit 2) before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from client.bridgectl.calls import build_args, real_server_line
from client.bridgectl.cli import main
from client.bridgectl.output import EXIT_USAGE, UsageError

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    "argv",
    [
        ["--arg", "offset=99999999999999999999999"],
        ["--arg", "offset=-9223372036854775809"],
        ["--arg", "offset=" + "9" * 5000],
        ["--json", '{"offset": 18446744073709551615}'],
        ["--json", '{"filters": {"size": [1, 9223372036854775808]}}'],
    ],
)
def test_integers_beyond_64_bits_are_a_usage_error_not_a_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # An endpoint nobody listens on: the usage error must come before any connection is tried.
    assert main(["--endpoint", "tcp://127.0.0.1:1", "call", "get_clients", *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("bridgectl: ") and "Traceback" not in err


def test_the_64_bit_limits_themselves_are_sent() -> None:
    args = build_args("get_clients", ["offset=9223372036854775807"], '{"limit": 5}')
    assert args == {"offset": 9223372036854775807, "limit": 5}
    with pytest.raises(UsageError, match="64 bits"):
        build_args("get_clients", ["offset=9223372036854775808"], None)


def test_status_says_whether_a_real_server_is_expected_and_since_when_it_is_away() -> None:
    since = datetime(2026, 12, 1, 14, 2, 31, tzinfo=UTC)
    assert real_server_line({"real_expected": False}).startswith("not expected")
    assert real_server_line({"real_expected": True, "real_unavailable_since": None}) == "expected, serving"
    away = {"real_expected": True, "real_unavailable_since": since, "policy": "stale"}
    assert real_server_line(away) == "expected, UNAVAILABLE since 2026-12-01 14:02:31 UTC (policy stale)"
