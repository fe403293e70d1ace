"""Fixtures shared by the unit tests; the fakes themselves are in fake_components.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest
from fake_components import FakeCloud, build_fake_cloud

from stack.model.placement import BLOCK_ENV


@pytest.fixture(autouse=True)
def default_loopback_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see the model at its documented addresses, whatever block the shell uses."""
    monkeypatch.setenv(BLOCK_ENV, "0")


@pytest.fixture
def fake_cloud(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Callable[[Iterable[tuple[str, tuple[str, ...]]]], FakeCloud]]:
    """Build LocalClouds of fakes from (name, depends_on) pairs; each is taken down at the end."""
    built: list[FakeCloud] = []

    def build(spec: Iterable[tuple[str, tuple[str, ...]]]) -> FakeCloud:
        built.append(build_fake_cloud(tmp_path_factory.mktemp("come2us-home"), spec))
        return built[-1]

    yield build
    for lab in built:
        lab.cloud.down()
