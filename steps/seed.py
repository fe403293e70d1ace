"""The seed catalogue in the test session: loaded once, on first request, by the features that
need a realistic catalogue (`come2us seed` does the same for a developer's cloud)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pytest
from pytest_bdd import given

from stack.come2us import come2us
from stack.local.seed import Catalogue, SeedReport
from stack.local.seed_api import load_seed
from stack.local.session import CloudSession
from steps.common import Scene

log = logging.getLogger("come2us.steps.seed")


@dataclass(frozen=True)
class SeededCatalogue:
    catalogue: Catalogue
    report: SeedReport
    seconds: float


@pytest.fixture(scope="session")
def seeded_catalogue(cloud: CloudSession) -> SeededCatalogue:
    started = time.monotonic()
    report = load_seed(come2us(), cloud.workspace)
    seconds = time.monotonic() - started
    log.info("seed catalogue loaded in %.1f s: %s", seconds, "; ".join(report.lines()))
    return SeededCatalogue(Catalogue.load(), report, seconds)


@given("the seed catalogue is loaded")
def seed_catalogue_is_loaded(seeded_catalogue: SeededCatalogue, scene: Scene) -> None:
    scene.values["catalogue"] = seeded_catalogue.catalogue
