"""The Packer template of the Jenkins image agrees with the model it feeds."""

from __future__ import annotations

import re
from pathlib import Path

from stack.come2us import come2us

TEMPLATE = Path(__file__).resolve().parents[2] / "packer" / "jenkins.pkr.hcl"


def default_of(variable: str) -> str:
    match = re.search(r'variable "' + variable + r'" \{[^}]*default = "([^"]+)"',
                      TEMPLATE.read_text())
    assert match, f"no default for {variable} in {TEMPLATE}"
    return match.group(1)


def test_the_image_id_goes_where_the_template_reads_it() -> None:
    model = come2us()
    assert default_of("ami_parameter") == model.cloud.ci.ami_parameter
    assert default_of("region") == model.region.name
    assert "aws ssm put-parameter" in TEMPLATE.read_text()


def test_the_image_mounts_the_stacks_home_volume() -> None:
    assert come2us().cloud.ci.home_device in TEMPLATE.read_text()
    assert 'http_tokens   = "required"' in TEMPLATE.read_text()
