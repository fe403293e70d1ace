"""haproxy.cfg and the listener map as rendered from the model, checked by HAProxy itself.

HAProxy is installed by `make setup` (Debian's package); a machine without it fails here with
the component's own message rather than skipping: the ALB is part of the platform.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from stack.come2us import LOCAL_HEALTH, come2us
from stack.local.alb.component import AlbComponent, haproxy_binary
from stack.local.alb.config import (
    ERROR_MESSAGES,
    SHARE_SCALE,
    AlbFiles,
    forward_action,
    ms,
    parse_forward_action,
    render_config,
    render_listener_map,
    server_options,
    share_per_mille,
)
from stack.local.backend import ProcessBackend
from stack.local.workspace import Workspace
from stack.model.compute import HealthCheck
from stack.model.edge import Colour
from stack.model.load_balancer import LocalLoadBalancer

BLUE, GREEN = Colour.BLUE, Colour.GREEN


def model_lb() -> LocalLoadBalancer:
    return come2us().load_balancer


def files_in(run: Path) -> AlbFiles:
    files = AlbFiles.in_run_dir(run, "alb")
    files.listener_map.write_text(render_listener_map(BLUE, {BLUE: 100, GREEN: 0}))
    return files


def haproxy_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([haproxy_binary(), "-c", "-f", str(config)], capture_output=True,
                          text=True, check=False)


def test_the_same_model_renders_the_same_text(tmp_path: Path) -> None:
    files = AlbFiles.in_run_dir(tmp_path, "alb")
    assert render_config(model_lb(), files) == render_config(model_lb(), files)


def test_files_live_in_the_run_directory_under_the_node_name(tmp_path: Path) -> None:
    files = AlbFiles.in_run_dir(tmp_path, "alb")
    assert (files.config, files.admin_socket, files.listener_map) == (
        tmp_path / "alb.cfg", tmp_path / "alb-admin.sock", tmp_path / "alb-active.map")


@pytest.mark.parametrize("idle_timeout_s", [60.0, 0.75])
def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path,
                                                    idle_timeout_s: float) -> None:
    files = files_in(tmp_path)
    files.config.write_text(render_config(replace(model_lb(), idle_timeout_s=idle_timeout_s),
                                          files))
    check = haproxy_check(files.config)
    assert check.returncode == 0, f"haproxy -c refused {files.config}:\n{check.stderr}"
    assert "Configuration file is valid" in check.stdout + check.stderr


def test_haproxy_refuses_a_broken_configuration(tmp_path: Path) -> None:
    """The check above can fail: a typo in a rendered line is caught by the same command."""
    files = files_in(tmp_path)
    text = render_config(model_lb(), files).replace("balance roundrobin", "balance round-robin")
    files.config.write_text(text)
    assert haproxy_check(files.config).returncode != 0


def test_the_component_prepares_a_configuration_haproxy_accepts(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "home")
    workspace.ensure()
    alb = AlbComponent(model_lb(), workspace, ProcessBackend())
    alb.prepare()
    assert alb.files.config.read_text() == render_config(model_lb(), alb.files)
    assert alb.files.listener_map.read_text() == "active blue:0\n"


def test_listener_binds_only_the_model_node_and_targets_are_never_in_the_file(
        tmp_path: Path) -> None:
    lb = model_lb()
    text = render_config(lb, AlbFiles.in_run_dir(tmp_path, "alb"))
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("bind ")] \
        == [f"bind {lb.node.host}:{lb.node.port}"]
    assert not [line for line in text.splitlines() if line.strip().startswith("server ")]
    for group in lb.target_groups:
        assert f"backend {group}\n" in text
        assert f"use_backend {group} if {{ var(txn.colour) -m str {lb.colour_of(group)} }}" \
            in text


def test_health_check_of_every_target_group_comes_from_the_model(tmp_path: Path) -> None:
    lb = replace(model_lb(), health=HealthCheck(path="/ready", interval_s=0.25, timeout_s=0.2,
                                                healthy_threshold=4, unhealthy_threshold=3,
                                                grace_period_s=1.0))
    text = render_config(lb, AlbFiles.in_run_dir(tmp_path, "alb"))
    for expected in ("option httpchk GET /ready", "http-check expect status 200",
                     "timeout check 200ms",
                     "default-server check inter 250ms fall 3 rise 4 pool-max-conn -1"):
        assert text.count(expected) == len(lb.target_groups), expected


def test_server_options_are_the_alb_thresholds_and_a_pool_of_kept_alive_connections() -> None:
    health = LOCAL_HEALTH  # HAProxy's inter/fall/rise are the ALB's interval and thresholds
    assert server_options(health) == (
        "check", "inter", f"{round(health.interval_s * 1000)}ms",
        "fall", str(health.unhealthy_threshold), "rise", str(health.healthy_threshold),
        # idle connections to the target kept for the next request (none without both)
        "pool-max-conn", "-1", "pool-purge-delay", "5s")
    assert model_lb().health == LOCAL_HEALTH


def test_durations_are_rendered_in_milliseconds() -> None:
    assert [ms(s) for s in (60.0, 1.0, 0.5, 0.0004, 2.5)] == \
        ["60000ms", "1000ms", "500ms", "0ms", "2500ms"]


def test_every_error_the_alb_answers_itself_is_json_in_the_error_shape(tmp_path: Path) -> None:
    text = render_config(replace(model_lb(), idle_timeout_s=7.0),
                         AlbFiles.in_run_dir(tmp_path, "alb"))
    pages = [line for line in text.splitlines() if line.strip().startswith("http-error ")]
    assert len(pages) == len(ERROR_MESSAGES)
    for status, page in zip(ERROR_MESSAGES, pages, strict=True):
        assert page.strip().startswith(f"http-error status {status} content-type "
                                       "application/json lf-string '")
        for field in ('"status":', '"error":', '"message":', '"requestId":', '"path":'):
            assert field in page
    assert "the target did not answer in time (7 s)" in pages[list(ERROR_MESSAGES).index(504)]


@pytest.mark.parametrize(("active", "weights", "value"), [
    (BLUE, {BLUE: 100, GREEN: 0}, "blue:0"),
    (GREEN, {BLUE: 0, GREEN: 100}, "green:0"),
    (BLUE, {BLUE: 90, GREEN: 10}, "blue:100"),
    (GREEN, {BLUE: 30, GREEN: 70}, "green:300"),
    (BLUE, {BLUE: 1, GREEN: 2}, "blue:667"),
    (BLUE, {BLUE: 999, GREEN: 1}, "blue:1"),
    (BLUE, {BLUE: 1, GREEN: 1}, "blue:500"),
])
def test_forward_action_names_the_active_colour_and_the_other_share(
        active: Colour, weights: dict[Colour, int], value: str) -> None:
    assert forward_action(active, weights) == value
    assert parse_forward_action(value) == (active, share_per_mille(weights, active))
    assert render_listener_map(active, weights) == f"active {value}\n"


def test_share_per_mille_of_both_sides_adds_up() -> None:
    weights = {BLUE: 37, GREEN: 63}
    assert share_per_mille(weights, BLUE) + share_per_mille(weights, GREEN) == SHARE_SCALE


@pytest.mark.parametrize("value", ["", "blue", "purple:0", "blue:", "blue:ten", ":100"])
def test_a_bad_forward_action_is_refused_with_the_expected_shape(value: str) -> None:
    with pytest.raises(ValueError, match="expected <colour>:<per mille>"):
        parse_forward_action(value)
