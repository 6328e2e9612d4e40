"""hello-api: the smallest Dapr app daca runs.

daca gives it the environment the Dapr CLI would: APP_ID, APP_PORT, DAPR_HTTP_PORT and
DAPR_GRPC_PORT, so the same code runs under `dapr run` or on Kubernetes. Greetings are kept in
the `statestore` component through the sidecar's state API (plain HTTP, no SDK needed).
"""

import json
import os
import urllib.error
import urllib.request

from fastapi import FastAPI, HTTPException

app = FastAPI(title="hello-api")

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


@app.get("/")
def hello() -> dict:
    return {
        "message": f"{os.environ.get('GREETING', 'hello')} from {os.environ.get('APP_ID', 'an app')}",
        "dapr_http_port": os.environ.get("DAPR_HTTP_PORT"),
        "dapr_grpc_port": os.environ.get("DAPR_GRPC_PORT"),
    }


@app.put("/greetings/{name}")
def save_greeting(name: str, greeting: dict) -> dict:
    dapr("POST", f"/state/{STORE}", [{"key": name, "value": greeting}])
    return {"saved": name}


@app.get("/greetings/{name}")
def read_greeting(name: str) -> dict:
    try:
        status, body = dapr("GET", f"/state/{STORE}/{name}")
    except urllib.error.HTTPError as error:
        raise HTTPException(status_code=502, detail=error.read().decode()) from error
    if status == 204:
        raise HTTPException(status_code=404, detail=f"no greeting for {name}")
    return json.loads(body)
