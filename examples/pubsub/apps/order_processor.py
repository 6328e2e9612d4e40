"""order-processor: the subscriber of the pubsub example.

It subscribes the Dapr way, with the official FastAPI extension: `DaprApp` answers
`GET /dapr/subscribe` with the app's subscriptions, which the sidecar reads when the app is ready,
and the sidecar then POSTs each event of the `orders` topic, as a CloudEvent, to `/orders`.
The handler's `{"status": "SUCCESS" | "RETRY" | "DROP"}` answer tells the sidecar what to do with
the event.

Each processed order is kept in the `statestore` component under `order-{id}`, through the
sidecar's state API (plain HTTP), and `GET /orders/{id}` reads it back, which is what checkout
calls through service invocation.
"""

import json
import logging
import os
import urllib.error
import urllib.request

from dapr.ext.fastapi import DaprApp
from fastapi import Body, FastAPI, HTTPException

logging.basicConfig(level=logging.INFO, format="%(message)s")
log = logging.getLogger("order-processor")

app = FastAPI(title="order-processor")
dapr_app = DaprApp(app)

DAPR = f"http://127.0.0.1:{os.environ.get('DAPR_HTTP_PORT', '3500')}/v1.0"
STORE = "statestore"


def dapr(method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{DAPR}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    token = os.environ.get("DAPR_API_TOKEN")
    if token:
        request.add_header("dapr-api-token", token)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


# DaprApp.subscribe registers the POST route and the subscription; note that its decorator
# returns None, so the name below is not bound to the function afterwards.
@dapr_app.subscribe(pubsub="pubsub", topic="orders", route="/orders")
def order_received(event: dict = Body()) -> dict:
    # `event` is the whole CloudEvent (id, source, type, topic, pubsubname, datacontenttype, ...);
    # the published order is its `data`.
    data = event.get("data")
    order = data
    if isinstance(data, str):  # data published as a JSON string rather than an object
        try:
            order = json.loads(data)
        except ValueError:
            order = None
    if not isinstance(order, dict) or not isinstance(order.get("orderId"), int):
        log.warning("dropping event %s: no integer orderId in %r", event.get("id"), data)
        return {"status": "DROP"}

    order_id = order["orderId"]
    try:
        dapr("POST", f"/state/{STORE}", [
            {"key": f"order-{order_id}", "value": {"orderId": order_id, "status": "processed"}}
        ])
    except urllib.error.URLError as error:
        log.warning("order %s not saved, asking for a retry: %s", order_id, error)
        return {"status": "RETRY"}
    log.info("processed order %s", order_id)
    return {"status": "SUCCESS"}


@app.get("/orders/{order_id}")
def read_order(order_id: int) -> dict:
    try:
        status, body = dapr("GET", f"/state/{STORE}/order-{order_id}")
    except urllib.error.HTTPError as error:
        raise HTTPException(status_code=502, detail=error.read().decode()) from error
    except urllib.error.URLError as error:
        raise HTTPException(status_code=502, detail=f"sidecar unreachable: {error.reason}") from error
    if status == 204 or not body:
        raise HTTPException(status_code=404, detail=f"no order {order_id}")
    saved = json.loads(body)
    return {"orderId": order_id, "status": saved["status"]}
