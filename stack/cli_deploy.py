"""`come2us deploy`, `switch`, `retire`: the promotion commands, thin over `stack.aws.deploy`.

Each command builds a target (real AWS from the caller's credentials, or the emulator at the
local cloud's AWS endpoint), opens one locked deploy session and runs one part of the blue/green
procedure (`stack.bluegreen`) in it; what it prints comes from the engine through
`ConsoleReporter`. Exit codes: 0 done (or nothing to do: switch and retire with no idle
colour), 1 failed, 2 refused (bad request, missing prerequisites, a half-finished deploy,
retiring the serving colour), 3 rolled back (the old colour still serves),
4 the deploy lock is held by someone else (named).
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from stack import bluegreen
from stack.come2us import ENVIRONMENTS, come2us, environment
from stack.deploy_lock import LockHeld
from stack.model.edge import Colour

if TYPE_CHECKING:
    from stack.aws.deploy import Deployer, Target
    from stack.aws.records import Change, DeployRecord

console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_ROLLED_BACK = 3
EXIT_LOCKED = 4
CHANGE_STYLE = {"Add": "green", "Modify": "yellow", "Remove": "red"}


class TargetName(StrEnum):
    LOCAL = "local"
    EMULATOR = "emulator"
    AWS = "aws"


TargetOption = Annotated[TargetName | None, typer.Option(
    "--target", help="local: the local runtime's tasks behind its ALB (HAProxy); emulator: the "
                     "local cloud's AWS endpoint (moto); aws: the account of your AWS "
                     "credentials.")]
EnvOption = Annotated[str | None, typer.Option(
    "--env", help=f"The environment: {', '.join(ENVIRONMENTS)}.")]
BreakLockOption = Annotated[bool, typer.Option(
    "--break-lock", help="Break a stale deploy lock first (says whose it was).")]

deploy_app = typer.Typer(
    help="Deploy an environment through CloudFormation change sets: the first time blue, then "
         "blue/green (§7-1). Subcommands: bootstrap, history, status, restore, reset.",
    invoke_without_command=True, no_args_is_help=False)


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


class ConsoleReporter:
    """Prints a deploy as it happens: steps, each change set as a table, stack events."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def _at(self) -> str:
        return f"[dim]{time.monotonic() - self.started:6.1f}s[/]"

    def step(self, title: str) -> None:
        console.print(f"{self._at()} [bold]{title}[/]")

    def change_set(self, stack: str, changes: list[Change]) -> None:
        counts = Counter(change.action for change in changes)
        table = Table(title=f"Change set for {stack}: " + ", ".join(
            f"{n} {action.lower()}" for action, n in sorted(counts.items())),
            title_justify="left")
        for column in ("Action", "Logical ID", "Type", "Replacement"):
            table.add_column(column, overflow="fold")
        for change in changes:
            style = CHANGE_STYLE.get(change.action, "")
            table.add_row(f"[{style}]{change.action}[/]", change.logical_id,
                          change.resource_type, change.replacement)
        console.print(table)

    def event(self, event: dict[str, Any]) -> None:
        status = str(event.get("ResourceStatus", ""))
        style = "red" if "FAILED" in status or "ROLLBACK" in status else (
            "green" if status.endswith("COMPLETE") else "yellow")
        reason = event.get("ResourceStatusReason") or ""
        console.print(f"{self._at()}   {event.get('LogicalResourceId', '')} "
                      f"[{style}]{status}[/] [dim]{reason}[/]")

    def note(self, message: str) -> None:
        console.print(f"{self._at()} [dim]{message}[/]")


def _environment(name: str | None) -> Any:
    if name is None:
        raise fail("--env is required", EXIT_REFUSED)
    try:
        return environment(name)
    except KeyError as err:
        raise fail(str(err.args[0]), EXIT_REFUSED) from err


def make_target(name: TargetName | None, env: str | None) -> Target:
    """The target a command deploys to; the emulator must be running (`come2us up`)."""
    if name is None:
        raise fail("--target is required: local, emulator or aws", EXIT_REFUSED)
    if name is TargetName.LOCAL:
        raise fail("this command is for the emulator and AWS; the local runtime's colours, "
                   "tasks and releases are in `come2us status`", EXIT_REFUSED)
    model, target_env = come2us(), _environment(env)
    if name is TargetName.AWS:
        from stack.aws.deploy import AwsTarget

        return AwsTarget(region=model.region.name)
    try:
        httpx.get(model.aws.url + "/moto-api/", timeout=2.0, trust_env=False)
    except httpx.HTTPError as err:
        raise fail(f"the local cloud's AWS endpoint does not answer at {model.aws.url} "
                   f"({err}); start it with `come2us up`", EXIT_REFUSED) from err
    from stack.aws.emulator_gaps import EmulatorTarget

    return EmulatorTarget(model.aws, model, target_env)


def make_deployer(target_name: TargetName | None, env: str | None) -> Deployer:
    from stack.aws.deploy import Deployer

    target = make_target(target_name, env)
    return Deployer(come2us(), _environment(env), target, ConsoleReporter())


@contextmanager
def reported_failures() -> Iterator[None]:
    """Turn the engine's refusals and failures into a message and an exit code."""
    from stack.aws.changeset import StackFailed
    from stack.aws.deploy import PrerequisiteMissing

    try:
        yield
    except LockHeld as err:
        raise fail(str(err), EXIT_LOCKED) from err
    except StackFailed as err:
        for failure in err.failures:
            errors.print(f"  [red]{failure}[/]")
        raise fail(str(err)) from err
    except (PrerequisiteMissing, bluegreen.Unfinished, bluegreen.Refused) as err:
        raise fail(str(err), EXIT_REFUSED) from err
    except RuntimeError as err:  # VerificationFailed and the like: the message says it all
        raise fail(str(err)) from err


def _run_procedure(deployer: Deployer, kind: str, version: str, break_lock: bool,
                   procedure: Callable[[Any], bluegreen.Result]) -> None:
    """One locked session around one part of blue/green; prints and exits by the outcome."""
    from stack.aws.colours import CloudFormationColours

    started = time.monotonic()
    with reported_failures(), deployer.session(kind, version, break_lock,
                                               what=f"{kind} {deployer.environment.name} "
                                                    f"{version}".strip()) as session:
        try:
            result = procedure(CloudFormationColours(session))
        except bluegreen.NothingToDo as err:
            session.record.result, session.record.reason = "nothing to do", str(err)
            console.print(f"nothing to do: {err}")
            return
        session.record.result = str(result.outcome)
        session.record.reason = result.reason
    record = session.record
    console.print(f"[bold]{result.outcome}[/]: {result.active} serves "
                  f"({deployer.environment.stack_name} on {deployer.target.name}, "
                  f"{time.monotonic() - started:.1f} s); record {record.id}")
    _print_verification(record)
    if result.outcome is bluegreen.Outcome.ROLLED_BACK:
        raise fail(f"rolled back: {result.reason}", EXIT_ROLLED_BACK)


def _print_verification(record: DeployRecord) -> None:
    verification = record.verification
    if not verification:
        return
    console.print(f"verified by describe calls: {verification['ok']} of "
                  f"{verification['resources']} resources as the template says")
    for resource, why in sorted(verification.get("not_emulated", {}).items()):
        console.print(f"  [yellow]not emulated[/] {resource}: {why}")
    for name, why in sorted(verification.get("rewrites", {}).items()):
        console.print(f"  [dim]rewritten for moto: {name}: {why}[/]")


def say(message: str) -> None:
    console.print(f"[cyan]{message}[/]")


def _run_local(procedure: Callable[[Any], bluegreen.Result], directory: Path | None = None,
               faults: tuple[str, ...] = ()) -> None:
    """One part of blue/green against the local runtime (`stack.local.bluegreen`), under the
    workspace's deploy lock; prints and exits by the outcome, as for AWS."""
    from stack.local.bluegreen import LocalColours, NotHealthy
    from stack.local.controlplane import ControlPlaneClient, ControlPlaneError
    from stack.local.workspace import Workspace

    workspace = Workspace.default()
    started = time.monotonic()
    with ControlPlaneClient(workspace, timeout=120.0) as client, \
            local_deploy_lock(workspace.run / "deploy.lock"):
        if not client.is_running():
            raise fail(f"the local cloud is not running for {workspace.home}; start it with "
                       f"`come2us up`", EXIT_REFUSED)
        platform = LocalColours(client, come2us(), directory, faults)
        try:
            result = procedure(platform)
        except bluegreen.NothingToDo as err:
            console.print(f"nothing to do: {err}")
            return
        except (bluegreen.Unfinished, bluegreen.Refused) as err:
            raise fail(str(err), EXIT_REFUSED) from err
        except (ControlPlaneError, NotHealthy) as err:
            raise fail(str(err)) from err
    console.print(f"[bold]{result.outcome}[/]: {result.active} serves (local runtime, "
                  f"{time.monotonic() - started:.1f} s); `come2us status` shows its tasks")
    if result.outcome is bluegreen.Outcome.ROLLED_BACK:
        raise fail(f"rolled back: {result.reason}", EXIT_ROLLED_BACK)


@contextmanager
def local_deploy_lock(path: Path) -> Iterator[None]:
    """One deploy at a time per workspace (the local stand-in for the DynamoDB lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise fail(f"another deploy holds {path}: {handle.read().strip() or 'unknown'}",
                       EXIT_LOCKED) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


CodeOption = Annotated[Path | None, typer.Option(
    "--code", help="--target local: the tree whose code the release runs (default: this "
                   "checkout), e.g. a copy with a new migration.", exists=True, file_okay=False)]
FaultOption = Annotated[list[str] | None, typer.Option(
    "--fault", help="--target local, a testing hook: a fault the release carries into its "
                    "tasks, e.g. gateway-health (its gateways fail their health check).")]


@deploy_app.callback()
def deploy(
    ctx: typer.Context,
    target: TargetOption = None,
    env: EnvOption = None,
    version: Annotated[str, typer.Option(
        help="The release: the image tag the new colour runs.")] = "latest",
    until: Annotated[bluegreen.Stage, typer.Option(
        help="Stop after this step: healthy (③), switched (④) or retired (⑤).")
    ] = bluegreen.Stage.RETIRED,
    break_lock: BreakLockOption = False,
    code: CodeOption = None,
    fault: FaultOption = None,
) -> None:
    """Create or update the stack: blue the first time, then blue/green with rollback."""
    if ctx.invoked_subcommand is not None:
        return
    if target is TargetName.LOCAL:
        _run_local(lambda platform: bluegreen.promote(platform, version, until, say),
                   code, tuple(fault or ()))
        return
    if code is not None or fault:
        raise fail("--code and --fault are for --target local", EXIT_REFUSED)
    deployer = make_deployer(target, env)
    _run_procedure(deployer, "deploy", version, break_lock,
                   lambda platform: bluegreen.promote(platform, version, until, say))


def switch(target: TargetOption = None, env: EnvOption = None,
           break_lock: BreakLockOption = False) -> None:
    """④ Switch the listener to the idle colour once it is healthy (rolls back if not)."""
    if target is TargetName.LOCAL:
        _run_local(lambda platform: bluegreen.switch(platform, say))
        return
    deployer = make_deployer(target, env)
    _run_procedure(deployer, "switch", "", break_lock,
                   lambda platform: bluegreen.switch(platform, say))


def retire(
    target: TargetOption = None, env: EnvOption = None,
    colour: Annotated[Colour | None, typer.Option(
        help="The idle colour to remove (default: the one that does not serve).")] = None,
    break_lock: BreakLockOption = False,
) -> None:
    """⑤ Remove the idle colour's services (after a switch: the old colour)."""
    if target is TargetName.LOCAL:
        _run_local(lambda platform: bluegreen.retire(platform, colour, say))
        return
    deployer = make_deployer(target, env)
    _run_procedure(deployer, "retire", "", break_lock,
                   lambda platform: bluegreen.retire(platform, colour, say))


def images(
    env: EnvOption = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Tab-separated lines for scripts: service, module, repository.")
    ] = False,
) -> None:
    """The image each service runs: its module (the Dockerfile's SERVICE) and ECR repository."""
    from stack.aws.bootstrap import repository_name

    target_env = _environment(env)
    specs = come2us().compute.services
    if plain:
        for spec in specs:
            typer.echo(f"{spec.name}\t{spec.module}\t{repository_name(target_env, spec)}")
        return
    table = Table(title=f"Images of {target_env.stack_name} (docker build --build-arg "
                        f"SERVICE=<module>)", title_justify="left")
    for column in ("Service", "Module", "ECR repository"):
        table.add_column(column)
    for spec in specs:
        table.add_row(spec.name, spec.module, repository_name(target_env, spec))
    console.print(table)


@deploy_app.command("bootstrap")
def bootstrap_stack(target: TargetOption = None, env: EnvOption = None) -> None:
    """Create or update only the bootstrap stack: lock table, records bucket, ECR repositories
    (before the first images are pushed)."""
    deployer = make_deployer(target, env)
    with reported_failures():
        info = deployer.ensure_bootstrap()
    console.print(f"{info.stack}: lock table {info.lock_table}, records bucket {info.bucket}")


@deploy_app.command("history")
def history(target: TargetOption = None, env: EnvOption = None,
            last: Annotated[int, typer.Option("-n", help="How many records.")] = 20) -> None:
    """The environment's deploy records (the basis of a restore, §11), oldest first."""
    deployer = make_deployer(target, env)
    with reported_failures():
        records = deployer.records().history(last)
    table = Table(title=f"Deploys of {deployer.environment.stack_name} on "
                        f"{deployer.target.name}", title_justify="left")
    for column in ("Record", "Who", "What", "Version", "Result", "Serves", "Stack updates",
                   "Verified"):
        table.add_column(column, overflow="fold")
    for record in records:
        updates = "; ".join(f"{step.name} ({_counts(step.summary()) or step.status})"
                            for step in record.steps)
        verified = record.verification
        table.add_row(record.id, record.who, record.kind, record.version, record.result,
                      record.active, updates,
                      f"{verified['ok']}/{verified['resources']}" if verified else "")
    console.print(table)


def _counts(summary: dict[str, int]) -> str:
    return ", ".join(f"{n} {action.lower()}" for action, n in sorted(summary.items()))


@deploy_app.command("status")
def status(target: TargetOption = None, env: EnvOption = None) -> None:
    """What is deployed (colours, active, releases) and who holds the deploy lock."""
    deployer = make_deployer(target, env)
    with reported_failures():
        rollout = deployer.deployed_rollout()
        holder = deployer.holder()
    if rollout is None:
        console.print(f"{deployer.stack}: not deployed")
    else:
        console.print(f"{deployer.stack}: {rollout.active} serves; colours "
                      f"{', '.join(rollout.colours)}; releases "
                      f"{', '.join(f'{c}={r}' for c, r in rollout.releases)}")
    console.print(f"deploy lock: held by {holder.describe()}" if holder else "deploy lock: free")


@deploy_app.command("restore")
def restore(target: TargetOption = None, env: EnvOption = None,
            record: Annotated[str, typer.Option(help="The record id (see `deploy history`).")]
            = "", break_lock: BreakLockOption = False) -> None:
    """Deploy again the template a deploy record names (§11: restore from the records)."""
    from stack.aws.deploy import restore_template

    if not record:
        raise fail("--record is required (see `come2us deploy history`)", EXIT_REFUSED)
    deployer = make_deployer(target, env)
    with reported_failures():
        store = deployer.records()
        kept = store.get(record)
        template, stored = restore_template(store, kept)
        with deployer.session("restore", kept.version, break_lock,
                              what=f"restore {record}") as session:
            session.apply_template(template, f"restore {stored.key} version "
                                             f"{stored.version_id} from record {record}")
            session.record.result = "restored"
    console.print(f"restored {deployer.stack} to record {record}; record "
                  f"{session.record.id}")
    _print_verification(session.record)


@deploy_app.command("reset")
def reset(target: TargetOption = None) -> None:
    """Empty the emulator (moto cannot delete a stack with a VPC), keep the local cloud's."""
    if target is not TargetName.EMULATOR:
        raise fail("reset empties the emulator only: pass --target emulator", EXIT_REFUSED)
    from stack.aws.emulator_gaps import reset_emulator

    model = come2us()
    try:
        reset_emulator(model.aws, model)
    except httpx.HTTPError as err:
        raise fail(f"the emulator at {model.aws.url} did not reset: {err}; is the local "
                   f"cloud up (`come2us up`)?", EXIT_REFUSED) from err
    console.print(f"emulator at {model.aws.url} reset; the local cloud's bucket and lock "
                  f"table are back")
