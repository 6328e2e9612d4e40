"""One app of examples/pods: run four times, as `a`, `b`, `c`, `d`, all on port 8000 and all
using the SDK's defaults (sidecar at localhost:3500 / :50001), as in a Kubernetes pod."""

import json
import os
import urllib.request

from dapr.clients import DaprClient
from fastapi import FastAPI, Request

app = FastAPI()
received = []


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.get("/whoami")
def whoami():
    # The sidecar at its hard-coded address, and through the SDK with its defaults.
    raw = get_json("http://localhost:3500/v1.0/metadata")
    with DaprClient() as dapr:
        sdk = dapr.get_metadata().application_id
        dapr.save_state("statestore", "owner", os.environ["APP_ID"])
        state = dapr.get_state("statestore", "owner").data.decode()
    return {"http": raw["id"], "sdk": sdk, "state": state, "port": os.environ["DAPR_HTTP_PORT"]}


@app.get("/call/{other}")
def call(other: str):
    # Another app by its cluster name, and its sidecar by Dapr's `<app>-dapr` service.
    ns = os.environ.get("NAMESPACE", "default")
    service = get_json(f"http://{other}.{ns}.svc.cluster.local:8000/whoami")
    sidecar = get_json(f"http://{other}-dapr:3500/v1.0/metadata")
    return {"service": service["http"], "sidecar": sidecar["id"]}


@app.get("/fetch")
def fetch(port: int):
    # A service on the machine (standing in for the internet), as from a container.
    with urllib.request.urlopen(f"http://host.docker.internal:{port}/", timeout=5) as answer:
        return {"body": answer.read().decode()}


@app.post("/publish/{topic}")
def publish(topic: str, request: Request):
    with DaprClient() as dapr:
        dapr.publish_event("pubsub", topic, json.dumps({"from": os.environ["APP_ID"]}),
                           data_content_type="application/json")
    return {"published": topic}


@app.get("/dapr/subscribe")
def subscribe():
    return [{"pubsubname": "pubsub", "topic": "hello", "route": "/events"}]


@app.post("/events")
async def events(request: Request):
    received.append((await request.json())["data"])
    return {"status": "SUCCESS"}


@app.get("/received")
def got():
    return received
