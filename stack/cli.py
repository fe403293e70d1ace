"""`come2us`: the one front door to the local cloud and to the AWS templates."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stack.cli_deploy import deploy_app, images, retire, switch
from stack.come2us import ENVIRONMENTS, come2us, environment
from stack.local.controlplane import ControlPlaneClient, ControlPlaneError, spawn
from stack.local.endpoints import endpoints
from stack.local.processes import ProcessRecords, alive
from stack.local.tasks.task import TaskState
from stack.local.workspace import Workspace
from stack.model.edge import Colour
from stack.waiting import DeadlineExceeded, wait_for

app = typer.Typer(
    help="COME2US testbed: bring the local cloud up, inspect it, take it down; render the AWS "
         "templates and promote them (deploy, switch, retire).",
    no_args_is_help=True,
    add_completion=False,
)
chaos = typer.Typer(help="Break things on purpose: stop, kill or start one component.")
app.add_typer(chaos, name="chaos")

# Piped output (CI logs) gets room for the status table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

STATE_STYLE = {
    "ready": "green",
    "starting": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "unhealthy": "red",
    "crashed": "bold red",
    "failed": "bold red",
}
EXIT_NOT_RUNNING = 3


def fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def status_table(components: list[dict[str, Any]]) -> Table:
    table = Table(title="COME2US local cloud", title_justify="left")
    for column in ("AZ", "Component", "Address", "Role", "State", "PID", "Detail"):
        table.add_column(column, overflow="fold")
    for row in components:
        state = row["state"]
        style = STATE_STYLE.get(state, "")
        table.add_row(row["zone"], row["name"], row["address"], row["role"],
                      f"[{style}]{state}[/]", str(row["pid"] or "-"), row["detail"])
    return table


def print_tasks(report: dict[str, Any]) -> None:
    """The compute side (`stack.local.tasks`): tasks per service and colour, the listener's
    active colour and the health of each target group's targets."""
    listener = report.get("listener")
    if listener is None:
        return
    table = Table(title=f"Tasks (ALB {listener['url']} forwards to {listener['active']})",
                  title_justify="left")
    for column in ("Service", "Colour", "Release", "Desired", "Running", "Healthy",
                   "Replaced", "Tasks"):
        table.add_column(column, overflow="fold")
    live = [t for t in report["tasks"] if t["state"] != TaskState.STOPPED]
    for row in report["services"]:
        mine = [t for t in live if t["service"] == row["service"]
                and t["colour"] == row["colour"]]
        style = "green" if row["healthy"] >= row["desired"] else "yellow"
        table.add_row(row["service"], row["colour"], row["release"], str(row["desired"]),
                      str(row["running"]), f"[{style}]{row['healthy']}[/]", str(row["replaced"]),
                      ", ".join(f"{t['address']} {t['state']}" for t in mine))
    console.print(table)
    for group, targets in listener["target_groups"].items():
        shown = ", ".join(f"{target} {health}" for target, health in targets.items())
        console.print(f"  {group}: {shown or 'no targets'}")


def print_endpoints(workspace: Workspace) -> None:
    table = Table(title="How to reach it (`eval $(come2us env)` exports these)",
                  title_justify="left")
    table.add_column("Variable")
    table.add_column("Value", overflow="fold")
    table.add_column("What")
    for endpoint in endpoints(come2us(), workspace):
        table.add_row(endpoint.variable, endpoint.value, endpoint.what)
    console.print(table)


@app.command()
def up(
    docker: Annotated[bool, typer.Option(
        "--docker", help="Run the backing services as containers (needs a Docker engine)."
    )] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every component.")] = 180.0,
) -> None:
    """Start the local cloud (or the parts of it that are not running) and wait until ready."""
    workspace = Workspace.default()
    backend = "docker" if docker else "process"
    if docker:
        from stack.local.containers import docker_engine_status

        engine = docker_engine_status()
        if not engine.available:
            raise fail(f"--docker was asked for, but {engine}. Start the engine, or run "
                       f"`come2us up` without --docker to start the same services as local "
                       f"processes.", 2)
    client = ControlPlaneClient(workspace)
    started = time.monotonic()
    try:
        if client.is_running():
            running_backend = client.status()["backend"]
            if running_backend != backend:
                raise fail(f"the local cloud already runs with the {running_backend} backend; "
                           f"`come2us down` first to switch to {backend}", 2)
        else:
            console.print(f"Starting the control plane for {workspace.home} …")
            spawn(workspace, backend)
        client.up()
        report = _follow_progress(client, started, timeout)
    except ControlPlaneError as err:
        raise fail(str(err)) from err
    finally:
        client.close()
    components = report["components"]
    console.print(status_table(components))
    print_tasks(report)
    broken = [c for c in components if c["state"] != "ready"]
    if broken:
        for component in broken:
            errors.print(f"[bold red]{component['name']}[/]: {component['detail']}")
        raise fail(f"{len(broken)} component(s) not ready. Logs: {workspace.logs}. "
                   f"Fix the cause and run `come2us up` again, or `come2us down`.")
    platform = report.get("platform")
    if platform is not None and not platform["ready"]:
        raise fail(f"the platform's tasks are not healthy: {platform['detail']}. See "
                   f"`come2us status` and the task logs in {workspace.logs}.")
    print_endpoints(workspace)
    console.print(f"[green]Local cloud ready[/] in {time.monotonic() - started:.1f} s.")
    if "listener" in report:
        console.print(f"Open [bold]{report['listener']['url']}/api/products[/] "
                      f"(the platform, through the ALB).")


def _follow_progress(client: ControlPlaneClient, started: float,
                     timeout: float) -> dict[str, Any]:
    """Print each component's transitions until the control plane has finished starting."""
    seen: dict[str, str] = {}
    with console.status("Bringing the local cloud up …") as spinner:

        def show(report: dict[str, Any]) -> None:
            for row in report["components"]:
                if seen.get(row["name"]) != row["state"]:
                    seen[row["name"]] = row["state"]
                    style = STATE_STYLE.get(row["state"], "")
                    console.print(f"  {time.monotonic() - started:5.1f}s  {row['zone']:<6} "
                                  f"{row['name']:<16} [{style}]{row['state']}[/]")
            waiting = [r["name"] for r in report["components"] if r["state"] == "starting"]
            spinner.update(f"Waiting for {', '.join(waiting) or 'the control plane'} …")

        return client.wait_started(timeout, on_report=show)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status.")] = False,
) -> None:
    """Show what runs where (AZ, address, role, state), probed now."""
    workspace = Workspace.default()
    with ControlPlaneClient(workspace) as client:
        if not client.is_running():
            raise fail(f"the local cloud is not running for {workspace.home}; start it with "
                       f"`come2us up`", EXIT_NOT_RUNNING)
        report = client.status()
    if as_json:
        console.print_json(data=report)
    else:
        console.print(status_table(report["components"]))
        print_tasks(report)
        for event in report["events"][-12:]:
            when = time.strftime("%H:%M:%S", time.localtime(event["at"]))
            console.print(f"  [dim]{when}[/] {event['component']}: {event['message']}")
    platform = report.get("platform")
    if any(row["state"] != "ready" for row in report["components"]) or (
            platform is not None and not platform["ready"]):
        raise typer.Exit(1)


@app.command()
def down(
    purge: Annotated[bool, typer.Option(
        "--purge", help="Also delete every data directory, log and secret of the local cloud."
    )] = False,
) -> None:
    """Stop every component and the control plane; with --purge, delete their data too."""
    workspace = Workspace.default()
    started = time.monotonic()
    with ControlPlaneClient(workspace) as client:
        pid = client.pid()
        if client.is_running():
            client.down()
        if pid is not None:
            try:
                wait_for(lambda: (True if not alive(pid) else None, f"pid {pid} alive"),
                         timeout=30, what="control plane exit")
            except DeadlineExceeded as err:
                raise fail(str(err)) from err
    # A control plane that died leaves its servers running: stop them from its records.
    for name, orphan in ProcessRecords(workspace.processes_file).stop_survivors({}):
        console.print(f"stopped {name} (pid {orphan}), left by a control plane that died")
    if purge:
        if (workspace.home / "docker").exists():
            _purge_containers(workspace)
        workspace.purge()
        console.print(f"Removed {workspace.home}.")
    console.print(f"Local cloud down in {time.monotonic() - started:.1f} s.")


def _purge_containers(workspace: Workspace) -> None:
    """Container data belongs to the images' users; only the engine can delete all of it."""
    from stack.local.containers import ContainerBackend, docker_engine_status

    if docker_engine_status().available:
        backend = ContainerBackend(workspace)
        backend.down()
        backend.purge()


@app.command()
def env(
    reveal: Annotated[bool, typer.Option(help="Print the real password (default).")] = True,
) -> None:
    """Print `export` lines for every endpoint: `eval $(come2us env)`."""
    for endpoint in endpoints(come2us(), Workspace.default(), reveal=reveal):
        typer.echo(f"export {endpoint.variable}={shlex.quote(endpoint.value)}")


@app.command()
def logs(
    name: Annotated[str, typer.Argument(
        help="Component or task name, e.g. rds-writer or gateway-blue-1.")],
    lines: Annotated[int, typer.Option("-n", help="How many lines.")] = 40,
    follow: Annotated[bool, typer.Option("-f", help="Keep printing new lines.")] = False,
) -> None:
    """Show a component's or a task's log."""
    workspace = Workspace.default()
    names = {node.name: node for node in come2us().nodes()}
    path = workspace.logs / f"{name}.log"
    if name not in names and name != "controlplane" and not path.exists():
        raise fail(f"no component or task named {name!r}; components: "
                   f"{', '.join(sorted(names))}; tasks: see `come2us status`", 2)
    if not path.exists():
        raise fail(f"{path} does not exist yet: {name} has not been started", 2)
    argv = ["tail", f"-n{lines}", *(["-F"] if follow else []), str(path)]
    raise typer.Exit(subprocess.call(argv))


@app.command()
def seed(
    catalogue: Annotated[Path | None, typer.Option(
        help="The data file (default: stack/local/seed_catalogue.yaml).")] = None,
) -> None:
    """Load the seed catalogue through the gateway: users, stores, categories, products with
    images, coupons. A second run adds only what is missing."""
    from stack.local.seed import CATALOGUE_FILE
    from stack.local.seed_api import SeedError, load_seed

    workspace = Workspace.default()
    with ControlPlaneClient(workspace) as client:
        if not client.is_running():
            raise fail("the local cloud is not running: `come2us up` first", EXIT_NOT_RUNNING)
    started = time.monotonic()
    try:
        report = load_seed(come2us(), workspace, catalogue or CATALOGUE_FILE)
    except SeedError as err:
        raise fail(str(err)) from err
    for line in report.lines():
        console.print(line)
    console.print(f"Seeded in {time.monotonic() - started:.1f} s.")


def _chaos(name: str, action: str) -> None:
    with ControlPlaneClient(Workspace.default()) as client:
        try:
            result = client.component(name, action)
        except ControlPlaneError as err:
            raise fail(str(err)) from err
    console.print(f"{name}: {result['state']}")


@chaos.command("kill")
def chaos_kill(name: str) -> None:
    """SIGKILL every process of a component (a host crash)."""
    _chaos(name, "kill")


@chaos.command("stop")
def chaos_stop(name: str) -> None:
    """Stop a component gracefully."""
    _chaos(name, "stop")


@chaos.command("start")
def chaos_start(name: str) -> None:
    """Start a component that is stopped or crashed."""
    _chaos(name, "start")


EnvironmentOption = Annotated[str, typer.Option(
    "--env", help=f"The AWS environment: {', '.join(ENVIRONMENTS)}.")]


def _environment(name: str) -> Any:
    try:
        return environment(name)
    except KeyError as err:
        raise fail(str(err.args[0]), 2) from err


@app.command()
def synth(
    env: EnvironmentOption,
    colour: Annotated[Colour, typer.Option(
        help="The active colour: the listener forwards to it (written into the template).")
    ] = Colour.BLUE,
    both: Annotated[bool, typer.Option(
        "--both", help="Deploy both colours' services (during a blue/green deploy).")] = False,
    release: Annotated[list[str] | None, typer.Option(
        help="COLOUR=TAG: the image tag a colour runs (default: latest).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Directory for <env>.json (default: build/cloudformation).")] = None,
    run_checkov: Annotated[bool, typer.Option(
        "--checkov/--no-checkov", help="Run checkov too (from tools/checkov/.venv).")] = True,
) -> None:
    """Write an environment's templates (platform and bootstrap stack), lint them (cfn-lint,
    checkov)."""
    from stack.aws.lint import CheckovUnavailable
    from stack.aws.rollout import Rollout
    from stack.aws.synth import DEFAULT_OUT, MAX_INLINE_BYTES, synthesize, synthesize_bootstrap

    target = _environment(env)
    releases: dict[Colour, str] = {}
    for item in release or []:
        name, _, tag = item.partition("=")
        if name not in list(Colour) or not tag:
            raise fail(f"--release takes COLOUR=TAG with COLOUR blue or green, not {item!r}", 2)
        releases[Colour(name)] = tag
    rollout = (Rollout.both(colour, releases) if both
               else Rollout.only(colour, releases.get(colour, "latest")))
    try:
        results = [synthesize(come2us(), target, rollout, out or DEFAULT_OUT, run_checkov),
                   synthesize_bootstrap(come2us(), target, out or DEFAULT_OUT, run_checkov)]
    except CheckovUnavailable as err:
        raise fail(str(err), 2) from err
    problems: list[str] = []
    for result in results:
        console.print(f"{result.path}: {result.resources} resources, {result.size:,} bytes "
                      f"(deploy from S3: above the {MAX_INLINE_BYTES:,}-byte inline limit)"
                      if result.size > MAX_INLINE_BYTES else
                      f"{result.path}: {result.resources} resources, {result.size:,} bytes")
        console.print(f"cfn-lint: {len(result.cfn_lint)} finding(s)")
        if result.checkov is not None:
            console.print(f"checkov: {result.checkov.passed} passed, "
                          f"{len(result.checkov.failed)} failed, "
                          f"{len(result.checkov.skipped)} suppressed")
        problems += [f"{result.path.name}: {problem}" for problem in result.problems]
    table = Table(title="Suppressions (each with its reason, in the template's metadata)",
                  title_justify="left")
    for column in ("Tool", "Resource", "Check", "Reason"):
        table.add_column(column, overflow="fold")
    for result in results:
        for row in result.suppressions:
            table.add_row(*row)
    console.print(table)
    if problems:
        for problem in problems:
            errors.print(f"[bold red]{problem}[/]")
        raise fail(f"{len(problems)} problem(s) in {', '.join(str(r.path) for r in results)}")


@app.command()
def cost(env: EnvironmentOption) -> None:
    """Monthly cost estimate of an environment, by resource, from the model and a price table."""
    from stack.aws.cost import estimate
    from stack.aws.prices import PRICES

    report = estimate(come2us(), _environment(env), PRICES)
    table = Table(title=f"COME2US {env}: monthly estimate, on-demand, {PRICES.region} "
                        f"(prices as of {PRICES.as_of})", title_justify="left")
    for column in ("Item", "Quantity", "USD / month", "Seed's cost choice"):
        table.add_column(column, overflow="fold")
    for line in report.lines:
        table.add_row(line.item, line.quantity, f"{line.monthly_usd:,.2f}", line.note)
    table.add_row("[bold]total (steady state)[/]", "", f"[bold]{report.total:,.2f}[/]", "")
    console.print(table)
    console.print(
        f"ECS at max tasks: {report.ecs_at_max:,.2f} USD/month instead of "
        f"{report.ecs_steady:,.2f}. During a blue/green deploy ECS runs twice "
        f"(§10): +{report.deploy_extra_per_hour:,.3f} USD per hour of deploy, "
        f"{report.deploy_extra_monthly:,.2f} USD/month at {report.deploy_hours:g} h "
        f"(included above). Budget: {target_budget(env)} USD.")
    console.print(f"[dim]Prices: {PRICES.source}[/]")


def target_budget(env: str) -> int:
    return int(environment(env).monthly_budget_usd)


# Promotion (stack.cli_deploy): deploy (bootstrap, history, status, restore, reset), switch,
# retire, images.
app.add_typer(deploy_app, name="deploy")
app.command()(switch)
app.command()(retire)
app.command()(images)


if __name__ == "__main__":
    app()
