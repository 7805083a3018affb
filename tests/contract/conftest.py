"""The backend fixtures: each contract test runs once per backend, as ``[mock]`` and ``[real]``.

``backend`` is fresh for every test; ``reader`` is one per module and backend, for tests
that only read or whose requests are refused (they change nothing, so they can share).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.harness import MODES, Backend, close, make_backend


@pytest.fixture(params=MODES)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = make_backend(request.param, tmp_path)
    yield made
    close(made)


@pytest.fixture(params=MODES, scope="module")
def reader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    made = make_backend(request.param, tmp_path_factory.mktemp(request.param))
    yield made
    close(made)
