"""docs/protocol.md must agree with the catalogue, error codes, topics and shapes."""

from __future__ import annotations

import re

import pytest

from protocol import docgen
from protocol.catalogue import OPERATIONS
from protocol.errors import ErrorCode
from protocol.events import TOPICS

pytestmark = pytest.mark.timeout(30)


def test_generated_sections_are_current() -> None:
    text = docgen.DOC.read_text()
    assert docgen.render(text) == text, "docs/protocol.md is stale: run python -m protocol.docgen --write"


def test_every_operation_error_and_topic_is_documented() -> None:
    text = docgen.DOC.read_text()
    documented_ops = set(re.findall(r"^#### `(\w+)`$", text, re.M))
    assert {op.name for op in OPERATIONS} <= documented_ops
    for code in ErrorCode:
        assert f"| `{code.value}` |" in text
    for topic in TOPICS:
        assert f"#### `{topic.name}`" in text


def test_render_detects_a_disagreement() -> None:
    text = docgen.DOC.read_text().replace("| `client_id` | string, id |", "| `client_id` | integer |", 1)
    assert docgen.render(text) != text
