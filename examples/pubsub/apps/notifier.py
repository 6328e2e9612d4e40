"""notifier: a gRPC app (`app_protocol: grpc`), written with the SDK's `dapr.ext.grpc.App`.

Apps like this one do not serve HTTP at all: the sidecar calls their AppCallback gRPC service.
It subscribes to `audited` (the events audit publishes) and answers the method `count` with how
many it has seen, so `curl localhost:3500/v1.0/invoke/notifier/method/count` (any app's
sidecar) reaches it through service invocation.
"""

import json
import os

from dapr.ext.grpc import App, InvokeMethodRequest, InvokeMethodResponse

app = App()
seen: list[int] = []


@app.subscribe(pubsub_name="pubsub", topic="audited")
def on_audited(event) -> None:
    order = json.loads(event.Data())
    seen.append(order["orderId"])
    print(f"notified of order {order['orderId']}", flush=True)


@app.method(name="count")
def count(request: InvokeMethodRequest) -> InvokeMethodResponse:
    return InvokeMethodResponse(json.dumps({"notified": seen}).encode(), "application/json")


if __name__ == "__main__":
    app.run(int(os.environ.get("APP_PORT", "50051")))
