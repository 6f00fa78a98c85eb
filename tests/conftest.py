"""Options of the whole suite (pytest reads `pytest_addoption` only from the root conftest)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshot",
        default=None,
        metavar="PNG",
        help="Also save the gateway browser test's screenshot here "
        "(the README's is deploy/gateway/page.png).",
    )
