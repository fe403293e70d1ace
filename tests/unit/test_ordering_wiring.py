"""How ordering is wired into the platform: the provider simulator as a local component that AWS
never sees, its URL served to the payment service, the gateway's routes, the settings files."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.common.properties import flatten
from services.common.settings import bind
from services.config.repository import load_platform_source
from services.gateway.routes import compile_routes
from services.gateway.settings import from_config
from services.order.settings import OrderSettings
from services.payment.settings import PaymentSettings
from stack.come2us import PAYMENT_PROVIDER, come2us
from stack.local.backend import ProcessBackend
from stack.local.services import ServiceProcess, ServiceWiring
from stack.local.workspace import Workspace

CONFIG_REPO = Path(__file__).resolve().parents[2] / "config-repo"


def wiring(tmp_path: Path) -> ServiceWiring:
    workspace = Workspace(tmp_path)
    workspace.ensure()
    return ServiceWiring(come2us(), workspace)


def test_the_provider_is_placed_locally_but_is_not_a_platform_service() -> None:
    model = come2us()
    [instance] = model.compute.instances_of(PAYMENT_PROVIDER.name)

    assert instance.node.zone is model.region.regional
    assert instance.node.address == "127.0.3.70:8090"
    assert PAYMENT_PROVIDER.name not in {spec.name for spec in model.compute.services}


def test_the_payment_service_is_served_the_providers_url(tmp_path: Path) -> None:
    source = load_platform_source(wiring(tmp_path).platform_file())

    settings = bind(PaymentSettings, source.source)

    assert settings.come2us.payment_provider.url == "http://127.0.3.70:8090"


def test_the_provider_gets_no_secrets_and_does_not_wait_for_kafka(tmp_path: Path) -> None:
    wired = wiring(tmp_path)
    [instance] = wired.model.compute.instances_of(PAYMENT_PROVIDER.name)

    process = ServiceProcess(instance, wired, wired.workspace, ProcessBackend())
    spec = process.process()

    assert spec.argv[-4:] == ("--host", "127.0.3.70", "--port", "8090")
    assert not any(name.startswith(("COME2US_", "AWS_")) for name in spec.env)
    assert process.depends_on == ()


def test_the_gateway_routes_orders_coupons_addresses_and_never_retries_payments() -> None:
    table = compile_routes(from_config(yaml.safe_load((CONFIG_REPO / "gateway.yml").read_text())))

    for path in ("/api/orders", "/api/orders/1/refund", "/api/coupons/SPRING/hold",
                 "/api/addresses/3"):
        route = table.match(b"POST", path)
        assert route is not None and route.target.app == "ORDER-SERVICE", path
        assert not table.is_public(b"POST", path)
    payments = table.match(b"GET", "/api/payments/1")
    assert payments is not None and payments.target.app == "PAYMENT-SERVICE"
    assert payments.retries == 0


def test_every_key_of_the_services_settings_files_reaches_their_settings() -> None:
    """A misspelt key would be ignored silently and the default used: refuse that here."""
    for model, name in ((OrderSettings, "order-service.yml"),
                        (PaymentSettings, "payment-service.yml")):
        written = flatten(yaml.safe_load((CONFIG_REPO / name).read_text()))
        bound = flatten(bind(model, written).model_dump())
        for key, value in written.items():
            canonical = key.replace("-", "_")
            assert canonical in bound, f"{name}: {key} reaches no setting"
            assert bound[canonical] == value, f"{name}: {key}"
