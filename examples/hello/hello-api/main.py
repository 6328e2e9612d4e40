"""hello-api: the smallest Dapr app daca runs.

daca gives it the environment the Dapr CLI would: APP_ID, APP_PORT, DAPR_HTTP_PORT and
DAPR_GRPC_PORT, so the same code runs under `dapr run` or on Kubernetes.
"""

import os

from fastapi import FastAPI

app = FastAPI(title="hello-api")


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
