"""checkout: the publisher of the pubsub example.

`POST /orders` publishes the order to the `orders` topic of the `pubsub` component through the
sidecar's publish API (plain HTTP, `POST /v1.0/publish/pubsub/orders`). The sidecar wraps it in a
CloudEvent and delivers it to every app that subscribed, here order-processor.

`GET /orders/{id}/status` asks order-processor for the order through service invocation, using
the official Python SDK: `DaprClient.invoke_method` talks HTTP to the sidecar
(`/v1.0/invoke/order-processor/method/orders/{id}`), the one DaprClient call that needs no gRPC.

daca gives the app the environment the Dapr CLI would (APP_ID, APP_PORT, DAPR_HTTP_PORT,
DAPR_GRPC_PORT), so the same code runs under `dapr run` or on Kubernetes.
"""

import json
import os
import urllib.error
import urllib.request

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprHttpError
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

app = FastAPI(title="checkout")

DAPR = f"http://127.0.0.1:{os.environ.get('DAPR_HTTP_PORT', '3500')}/v1.0"
PUBSUB = "pubsub"
TOPIC = "orders"
PROCESSOR = "order-processor"


class Order(BaseModel):
    """An order: `orderId` is required, any other fields travel along with it."""

    model_config = ConfigDict(extra="allow")

    orderId: int


def passed_on(status: int, raw: bytes) -> JSONResponse:
    """An error answer carrying the body that came back: as JSON when it is JSON."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"detail": raw.decode(errors="replace")}
    return JSONResponse(status_code=status, content=body)


def publish(pubsub: str, topic: str, event: dict) -> None:
    request = urllib.request.Request(
        f"{DAPR}/publish/{pubsub}/{topic}", data=json.dumps(event).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    token = os.environ.get("DAPR_API_TOKEN")
    if token:
        request.add_header("dapr-api-token", token)
    with urllib.request.urlopen(request, timeout=5):
        pass  # 204 No Content: the broker has the event


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.post("/orders")
def create_order(order: Order):
    try:
        publish(PUBSUB, TOPIC, order.model_dump())
    except urllib.error.HTTPError as error:
        return passed_on(502, error.read())
    except urllib.error.URLError as error:
        raise HTTPException(status_code=502, detail=f"sidecar unreachable: {error.reason}") from error
    return {"published": order.orderId}


@app.get("/orders/{order_id}/status")
def order_status(order_id: int):
    # A plain `def`, not `async def`: the SDK's synchronous invoke_method runs its own event loop
    # and fails inside a running one, so it must run in FastAPI's thread pool.
    # DaprClient() waits for the sidecar (GET /v1.0/healthz/outbound) before it returns.
    try:
        with DaprClient() as client:
            response = client.invoke_method(PROCESSOR, f"orders/{order_id}", http_verb="GET")
    except DaprHttpError as error:
        # A non-2xx answer, from order-processor (passed on by its sidecar) or from a sidecar.
        raw = error.as_dict()["raw_response_bytes"] or b""
        return passed_on(404 if error.status_code == 404 else 502, raw)
    except TimeoutError:  # the sidecar never answered GET /v1.0/healthz/outbound with 2xx
        raise HTTPException(status_code=502, detail="sidecar not healthy") from None
    return response.json()
