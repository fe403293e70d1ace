"""`come2us cost`: the estimate follows the model and shows the seed's cost choices (§10)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from stack.aws.cost import estimate, task_hourly
from stack.aws.prices import PRICES
from stack.cli import app
from stack.come2us import ENVIRONMENTS, come2us, environment


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_each_environment_fits_its_budget(name: str) -> None:
    report = estimate(come2us(), environment(name), PRICES)
    assert 0 < report.total < environment(name).monthly_budget_usd
    assert report.total == round(sum(line.monthly_usd for line in report.lines), 2)


def test_prod_pays_for_a_nat_per_az_and_dev_for_one() -> None:
    dev = estimate(come2us(), environment("dev"), PRICES).line("NAT gateways")
    prod = estimate(come2us(), environment("prod"), PRICES).line("NAT gateways")
    hourly = PRICES.nat_hour * PRICES.hours_per_month
    assert dev.quantity.startswith("1 ") and prod.quantity.startswith("2 ")
    assert prod.monthly_usd - dev.monthly_usd == pytest.approx(
        hourly + (environment("prod").usage.nat_processed_gb
                  - environment("dev").usage.nat_processed_gb) * PRICES.nat_gb, abs=0.01)


def test_the_cache_is_one_node_and_logs_are_kept_30_days() -> None:
    report = estimate(come2us(), environment("dev"), PRICES)
    cache = report.line("Cache Redis")
    assert cache.quantity.startswith("1 x") and "single node" in cache.note
    assert "30 days" in report.line("CloudWatch Logs").note


def test_a_blue_green_deploy_doubles_ecs_for_its_hours() -> None:
    model = come2us()
    report = estimate(model, environment("dev"), PRICES)
    steady_hourly = sum(s.scaling.min_tasks * task_hourly(s, PRICES)
                        for s in model.compute.services)
    assert report.deploy_extra_per_hour == pytest.approx(steady_hourly)
    assert report.ecs_steady == pytest.approx(steady_hourly * PRICES.hours_per_month)
    overlap = report.line("ECS blue/green overlap")
    assert overlap.monthly_usd == pytest.approx(
        steady_hourly * environment("dev").usage.deploy_hours, abs=0.01)
    assert report.ecs_at_max > report.ecs_steady


def test_a_size_without_a_price_is_an_error_not_a_zero() -> None:
    dev = environment("dev")
    odd = replace(dev, sizes=replace(dev.sizes, cache_redis_node="cache.m7g.large"))
    with pytest.raises(KeyError, match="no ap-northeast-2 price for node type"):
        estimate(come2us(), odd, PRICES)


def test_the_cost_command_prints_the_breakdown_and_the_price_date() -> None:
    result = CliRunner().invoke(app, ["cost", "--env", "prod"])
    assert result.exit_code == 0, result.output
    for text in ("NAT gateways", "Cache Redis", "ECS blue/green overlap", PRICES.as_of,
                 "total (steady state)"):
        assert text in result.output
