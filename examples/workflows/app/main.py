"""Dapr Workflow under daca: a FastAPI app that is its own workflow worker (the SDK's
WorkflowRuntime, started with the app) and starts and controls workflows through the SDK's
DaprWorkflowClient. Each workflow shows one thing the course's workflow labs use."""

import json
import os
import time
from contextlib import asynccontextmanager
from datetime import timedelta

import dapr.ext.workflow as wf
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

runtime = wf.WorkflowRuntime()
# Where the activities note each run (the tests read it: an activity runs again after a crash).
RUNS = os.environ.get("WORKFLOW_RUNS", "runs.log")


def note(what: str) -> None:
    with open(RUNS, "a") as runs:
        runs.write(what + "\n")


@runtime.activity(name="greet")
def greet(ctx, name):
    return f"Hello {name}"


@runtime.activity(name="add_one")
def add_one(ctx, n):
    return n + 1


@runtime.activity(name="square")
def square(ctx, n):
    return n * n


@runtime.activity(name="flaky")
def flaky(ctx, key):
    # Fails the first two times for each key.
    note(f"flaky {key}")
    with open(RUNS) as runs:
        tries = sum(1 for line in runs if line.strip() == f"flaky {key}")
    if tries <= 2:
        raise RuntimeError(f"try {tries} of {key} fails")
    return f"{key} after {tries} tries"


@runtime.activity(name="slow")
def slow(ctx, seconds):
    note("slow started")
    time.sleep(seconds)
    note("slow done")
    return f"slept {seconds}"


@runtime.activity(name="whoami")
def whoami(ctx, _=None):
    return os.environ.get("APP_ID")


@runtime.activity(name="boom")
def boom(ctx, _=None):
    raise ValueError("the activity failed on purpose")


@runtime.workflow(name="hello")
def hello(ctx: wf.DaprWorkflowContext, name):
    return (yield ctx.call_activity(greet, input=name))


@runtime.workflow(name="chain")
def chain(ctx: wf.DaprWorkflowContext, n):
    for _ in range(3):
        n = yield ctx.call_activity(add_one, input=n)
    return n


@runtime.workflow(name="fanout")
def fanout(ctx: wf.DaprWorkflowContext, count):
    squares = yield wf.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    return squares


@runtime.workflow(name="approval")
def approval(ctx: wf.DaprWorkflowContext, _=None):
    ctx.set_custom_status("waiting for approval")
    decision = yield ctx.wait_for_external_event("approval")
    ctx.set_custom_status("decided")
    return decision


@runtime.workflow(name="approval_later")
def approval_later(ctx: wf.DaprWorkflowContext, seconds):
    # An event raised while this waits on its timer arrives before anyone waits for it.
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (yield ctx.wait_for_external_event("approval"))


@runtime.workflow(name="timer")
def timer(ctx: wf.DaprWorkflowContext, seconds):
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (ctx.current_utc_datetime - start).total_seconds()


@runtime.workflow(name="race")
def race(ctx: wf.DaprWorkflowContext, seconds):
    event = ctx.wait_for_external_event("go")
    timeout = ctx.create_timer(timedelta(seconds=seconds))
    winner = yield wf.when_any([event, timeout])
    return "event" if winner == event else "timer"


@runtime.workflow(name="parent")
def parent(ctx: wf.DaprWorkflowContext, name):
    child = yield ctx.call_child_workflow(hello, input=name)
    return f"child said: {child}"


@runtime.workflow(name="boss")
def boss(ctx: wf.DaprWorkflowContext, _=None):
    # Its child waits for an approval that never comes: a recursive terminate ends both.
    return (yield ctx.call_child_workflow(approval))


@runtime.workflow(name="remote")
def remote(ctx: wf.DaprWorkflowContext, target):
    # Another app's activity and child workflow (SDK 1.16 and later: app_id=).
    where = yield ctx.call_activity(whoami, app_id=target)
    child = yield ctx.call_child_workflow(hello, input="remote", app_id=target)
    return [where, child]


@runtime.workflow(name="countdown")
def countdown(ctx: wf.DaprWorkflowContext, state=None):
    state = state or {"left": 3, "seen": 0}
    if state["left"] > 0:
        ctx.continue_as_new({"left": state["left"] - 1, "seen": state["seen"] + 1})
        return
    return state


@runtime.workflow(name="retry")
def retry(ctx: wf.DaprWorkflowContext, key):
    # max_retry_interval set: durabletask-dapr 0.2.0a7 (SDK 1.15) never retries without one.
    policy = wf.RetryPolicy(
        first_retry_interval=timedelta(seconds=1),
        max_number_of_attempts=3,
        max_retry_interval=timedelta(seconds=2),
    )
    return (yield ctx.call_activity(flaky, input=key, retry_policy=policy))


@runtime.workflow(name="slow")
def slow_workflow(ctx: wf.DaprWorkflowContext, seconds):
    return (yield ctx.call_activity(slow, input=seconds))


@runtime.workflow(name="fail")
def fail(ctx: wf.DaprWorkflowContext, _=None):
    return (yield ctx.call_activity(boom, input=None))


@asynccontextmanager
async def lifespan(_: FastAPI):
    runtime.start()
    yield
    runtime.shutdown()


app = FastAPI(lifespan=lifespan)
WORKFLOWS = {
    w.__name__: w
    for w in [hello, chain, fanout, approval, approval_later, timer, race, parent, boss, remote, countdown, retry, fail]
}
WORKFLOWS["slow"] = slow_workflow


def client() -> wf.DaprWorkflowClient:
    return wf.DaprWorkflowClient()


def state_json(state) -> dict:
    if state is None:
        return {"status": None}
    failure = state.failure_details
    return {
        "id": state.instance_id,
        "name": state.name,
        "status": state.runtime_status.name,
        "input": state.serialized_input,
        "output": state.serialized_output,
        "custom_status": state.serialized_custom_status,
        "failure": failure and {"type": failure.error_type, "message": failure.message},
    }


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.post("/workflows/{name}")
async def start(name: str, request: Request, id: str | None = None):
    body = await request.body()
    data = json.loads(body) if body else None
    try:
        instance = client().schedule_new_workflow(workflow=WORKFLOWS[name], input=data, instance_id=id)
    except Exception as err:  # the sidecar's gRPC error (an id already running), shown
        return JSONResponse({"error": str(err)}, status_code=409)
    return {"id": instance}


@app.get("/list")
def list_instances(page: int = 2):
    # The newest SDK's management calls (Dapr 1.17 and later): every id, a page at a time.
    ids, token = [], None
    while True:
        got = client().list_workflow_instance_ids(page_size=page, continuation_token=token)
        ids.extend(got.instance_ids)
        token = got.continuation_token
        if token is None:
            return {"ids": ids}


@app.get("/history/{instance}")
def history(instance: str):
    try:
        events = client().get_workflow_history(instance)
    except Exception as err:  # NOT_FOUND for an unknown instance
        return JSONResponse({"error": str(err)}, status_code=404)
    return {"events": [e.event_type.name for e in events]}


@app.post("/dapr-client/{name}")
async def start_with_dapr_client(name: str, request: Request, id: str):
    # The older path: DaprClient's workflow methods (gRPC StartWorkflowBeta1, SDK 1.15).
    from dapr.clients import DaprClient

    with DaprClient() as dapr:
        started = dapr.start_workflow(
            workflow_component="dapr",
            workflow_name=name,
            input=await request.body(),
            instance_id=id,
            send_raw_bytes=True,
        )
        return {"id": started.instance_id}


@app.get("/dapr-client/{instance}")
def get_with_dapr_client(instance: str):
    from dapr.clients import DaprClient

    with DaprClient() as dapr:
        got = dapr.get_workflow(instance_id=instance, workflow_component="dapr")
        return {"status": got.runtime_status, "properties": dict(got.properties)}


@app.get("/workflows/{instance}")
def get(instance: str):
    return state_json(client().get_workflow_state(instance, fetch_payloads=True))


@app.get("/workflows/{instance}/wait")
def wait(instance: str, timeout: int = 60):
    return state_json(client().wait_for_workflow_completion(instance, timeout_in_seconds=timeout))


@app.post("/workflows/{instance}/events/{event}")
async def raise_event(instance: str, event: str, request: Request):
    body = await request.body()
    client().raise_workflow_event(instance, event, data=json.loads(body) if body else None)
    return {"raised": event}


@app.post("/workflows/{instance}/{verb}")
def control(instance: str, verb: str):
    c = client()
    try:
        {"pause": c.pause_workflow, "resume": c.resume_workflow,
         "terminate": c.terminate_workflow, "purge": c.purge_workflow}[verb](instance)
    except Exception as err:  # the SDK's gRPC error, shown to the caller
        return JSONResponse({"error": str(err)}, status_code=500)
    return {"done": verb}
