"""The simulator's HTTP API, shaped like a PG's: charges, refunds, and an admin knob.

    POST /charges            {amount, currency, reference, idempotencyKey}
                             201 approved | 402 declined | 503 outage | 422 key reused
    GET  /charges            ?reference=&idempotencyKey=   what was charged (tests count these)
    GET  /charges/{id}
    POST /refunds            {chargeId, amount, idempotencyKey}
                             201 refunded | 404 unknown charge | 409 not refundable | 503
    GET  /admin/behaviour    the current latency / failure rate / error rate
    PUT  /admin/behaviour    change them for every later request
    GET  /health

A replayed idempotency key answers with the first answer's status and body and the header
``Idempotent-Replayed: true``. Headers ``X-Simulate-Latency-Ms``, ``X-Simulate-Failure-Rate``
and ``X-Simulate-Error-Rate`` override the behaviour for one request.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from services.common.logs import RequestIdMiddleware
from services.payment_provider.ledger import (
    Behaviour,
    Charge,
    ChargeStatus,
    KeyReused,
    Ledger,
    NotRefundable,
    Refund,
    UnknownCharge,
)

REPLAYED_HEADER = "Idempotent-Replayed"


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ChargeRequest(Camel):
    amount: int = Field(gt=0, description="minor units; KRW has none, so won")
    currency: str = Field("KRW", min_length=3, max_length=3)
    reference: str = Field(min_length=1, max_length=200, description="the merchant's order id")
    idempotency_key: str = Field(min_length=1, max_length=200)


class ChargeBody(Camel):
    id: str
    status: ChargeStatus
    amount: int
    currency: str
    reference: str
    idempotency_key: str
    reason: str | None
    refunded: int
    created_at: str

    @classmethod
    def of(cls, charge: Charge) -> ChargeBody:
        return cls(id=charge.id, status=charge.status, amount=charge.amount,
                   currency=charge.currency, reference=charge.reference,
                   idempotency_key=charge.idempotency_key, reason=charge.reason,
                   refunded=charge.refunded, created_at=charge.created_at.isoformat())


class RefundRequest(Camel):
    charge_id: str = Field(min_length=1)
    amount: int = Field(gt=0)
    idempotency_key: str = Field(min_length=1, max_length=200)


class RefundBody(Camel):
    id: str
    status: str
    charge_id: str
    amount: int
    idempotency_key: str
    created_at: str

    @classmethod
    def of(cls, refund: Refund) -> RefundBody:
        return cls(id=refund.id, status=refund.status, charge_id=refund.charge_id,
                   amount=refund.amount, idempotency_key=refund.idempotency_key,
                   created_at=refund.created_at.isoformat())


class BehaviourBody(Camel):
    latency_ms: int = Field(0, ge=0, le=60_000)
    failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)


class Problem(Camel):
    code: str
    message: str


def problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(Problem(code=code, message=message).model_dump(by_alias=True),
                        status_code=status)


def body(model: BaseModel, status: int, replayed: bool) -> JSONResponse:
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    return JSONResponse(model.model_dump(by_alias=True), status_code=status, headers=headers)


def create_app(ledger: Ledger | None = None, behaviour: Behaviour | None = None) -> FastAPI:
    app = FastAPI(title="Payment provider simulator",
                  description="An external PG stand-in with adjustable latency and failures.")
    app.add_middleware(RequestIdMiddleware)
    books = ledger if ledger is not None else Ledger()
    state: dict[str, Behaviour] = {"behaviour": behaviour or Behaviour()}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in error.errors())
        return problem(422, "invalid_request", f"invalid fields: {fields}")

    def effective(latency: int | None, failure: float | None, error: float | None) -> Behaviour:
        return state["behaviour"].overridden(latency, failure, error)

    async def answer(model: BaseModel, status: int, replayed: bool,
                     behaviour: Behaviour) -> JSONResponse:
        if behaviour.latency_ms:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        return body(model, status, replayed)

    @app.post("/charges", status_code=201, response_model=ChargeBody,
              responses={402: {"model": ChargeBody}, 422: {"model": Problem},
                         503: {"model": Problem}})
    async def charge(
        request: ChargeRequest,
        x_simulate_latency_ms: Annotated[int | None, Header(ge=0, le=60_000)] = None,
        x_simulate_failure_rate: Annotated[float | None, Header(ge=0, le=1)] = None,
        x_simulate_error_rate: Annotated[float | None, Header(ge=0, le=1)] = None,
    ) -> JSONResponse:
        behaviour = effective(x_simulate_latency_ms, x_simulate_failure_rate,
                              x_simulate_error_rate)
        if books.outage(behaviour):
            return problem(503, "unavailable", "the provider is unavailable (simulated)")
        try:
            recorded = books.charge(key=request.idempotency_key, reference=request.reference,
                                    amount=request.amount, currency=request.currency,
                                    behaviour=behaviour)
        except KeyReused as error:
            return problem(422, "idempotency_key_reused", str(error))
        assert isinstance(recorded.value, Charge)
        status = 201 if recorded.value.status is ChargeStatus.APPROVED else 402
        return await answer(ChargeBody.of(recorded.value), status, recorded.replayed, behaviour)

    @app.get("/charges", response_model=list[ChargeBody])
    async def charges(
        reference: str | None = None,
        idempotency_key: Annotated[str | None, Query(alias="idempotencyKey")] = None,
    ) -> list[ChargeBody]:
        found = books.find_charges(reference=reference, idempotency_key=idempotency_key)
        return [ChargeBody.of(c) for c in found]

    @app.get("/charges/{charge_id}", response_model=ChargeBody,
             responses={404: {"model": Problem}})
    async def one_charge(charge_id: str) -> Any:
        found = books.charges.get(charge_id)
        if found is None:
            return problem(404, "not_found", f"no charge {charge_id}")
        return ChargeBody.of(found)

    @app.post("/refunds", status_code=201, response_model=RefundBody,
              responses={404: {"model": Problem}, 409: {"model": Problem},
                         422: {"model": Problem}, 503: {"model": Problem}})
    async def refund(
        request: RefundRequest,
        x_simulate_latency_ms: Annotated[int | None, Header(ge=0, le=60_000)] = None,
        x_simulate_error_rate: Annotated[float | None, Header(ge=0, le=1)] = None,
    ) -> JSONResponse:
        behaviour = effective(x_simulate_latency_ms, None, x_simulate_error_rate)
        if books.outage(behaviour):
            return problem(503, "unavailable", "the provider is unavailable (simulated)")
        try:
            recorded = books.refund(key=request.idempotency_key, charge_id=request.charge_id,
                                    amount=request.amount)
        except KeyReused as error:
            return problem(422, "idempotency_key_reused", str(error))
        except UnknownCharge as error:
            return problem(404, "not_found", str(error))
        except NotRefundable as error:
            return problem(409, "not_refundable", str(error))
        assert isinstance(recorded.value, Refund)
        return await answer(RefundBody.of(recorded.value), 201, recorded.replayed, behaviour)

    @app.get("/admin/behaviour", response_model=BehaviourBody)
    async def get_behaviour() -> BehaviourBody:
        current = state["behaviour"]
        return BehaviourBody(latency_ms=current.latency_ms, failure_rate=current.failure_rate,
                             error_rate=current.error_rate)

    @app.put("/admin/behaviour", response_model=BehaviourBody)
    async def put_behaviour(change: BehaviourBody) -> BehaviourBody:
        state["behaviour"] = Behaviour(latency_ms=change.latency_ms,
                                       failure_rate=change.failure_rate,
                                       error_rate=change.error_rate)
        return change

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "UP"}

    return app
