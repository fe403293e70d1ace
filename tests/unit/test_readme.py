"""The README's "What runs where" table is documentation of the model: keep them equal."""

from __future__ import annotations

import re
from pathlib import Path

from stack.come2us import come2us_on_block

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| (AZ-\w|region) \| ([\d./]+) \| `([\w-]+)` \| ([\d.:]+) \|")


def test_where_things_run_table_matches_the_model() -> None:
    documented = {
        match.groups() for line in README.read_text().splitlines() if (match := ROW.match(line))
    }
    modelled = {
        (node.zone.label, str(node.zone.loopback), node.name, node.address)
        for node in come2us_on_block(0).nodes()
    }
    assert documented == modelled
