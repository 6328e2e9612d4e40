"""audit: the same building blocks through the official SDK's default transport, gRPC.

It subscribes to `orders` too (a second consumer group: every subscriber gets every order), and
for each order uses `DaprClient` over gRPC (`DAPR_GRPC_PORT`) to write two keys in one state
transaction and to publish an `audited` event, which it also subscribes to. `GET /audit/{id}`
reads the record back with `get_state` and reports what `get_metadata` says about the sidecar;
`GET /audit-last?store=...` shows how the SDK reports a sidecar error (`DaprGrpcError`, whose
`error_code()` is Dapr's `DAPR_*` reason).
This is how the Dapr courses write apps after their first HTTP-only steps; under daca it runs
unchanged.
"""

import json

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation
from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI, HTTPException

app = FastAPI(title="audit")
dapr_app = DaprApp(app)
STORE = "statestore"
audited: set[int] = set()


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


# DaprApp.subscribe registers the route and returns None, so the names below are not callable.
@dapr_app.subscribe(pubsub="pubsub", topic="orders", route="/audit-orders")
def audit_order(event: dict) -> dict:
    order = event.get("data") or {}
    order_id = order.get("orderId")
    if not isinstance(order_id, int):
        return {"status": "DROP"}
    with DaprClient() as client:
        client.execute_state_transaction(
            STORE,
            [
                TransactionalStateOperation(key=f"audit-{order_id}", data=json.dumps(order)),
                TransactionalStateOperation(key="audit-last", data=str(order_id)),
            ],
        )
        client.publish_event(
            "pubsub", "audited", json.dumps({"orderId": order_id}), data_content_type="application/json"
        )
    print(f"audited order {order_id}", flush=True)
    return {"status": "SUCCESS"}


@dapr_app.subscribe(pubsub="pubsub", topic="audited", route="/audited")
def on_audited(event: dict) -> dict:
    audited.add(event["data"]["orderId"])
    return {"status": "SUCCESS"}


@app.get("/audit/{order_id}")
def read_audit(order_id: int) -> dict:
    with DaprClient() as client:
        record = client.get_state(STORE, f"audit-{order_id}")
        last = client.get_state(STORE, "audit-last")
        metadata = client.get_metadata()
    if not record.data:
        raise HTTPException(status_code=404, detail=f"no audit record for order {order_id}")
    return {
        "order": json.loads(record.data),
        "etag": record.etag,
        "last": last.data.decode(),
        "app": metadata.application_id,
        "audited": order_id in audited,
    }


@app.get("/audit-last")
def read_last(store: str = STORE) -> dict:
    with DaprClient() as client:
        try:
            last = client.get_state(store, "audit-last")
        except DaprGrpcError as err:
            detail = {"error_code": err.error_code(), "status": err.code().name, "message": err.details()}
            raise HTTPException(status_code=502, detail=detail) from err
    return {"last": last.data.decode()}
