"""Dapr actors with the official Python SDK, as the course's "agent actors" labs use them.

`Counter` keeps a count in actor state and takes reminders and timers; `Pinger` calls
another Pinger that calls it back (reentrancy); `Idler` is deactivated after 2 s idle.
The plain routes below call the actors through `ActorProxy`, as a client app would, and
`/log` tells what the actors saw (timer fires, deactivations, turns), for the tests.
"""

import asyncio
import os
import time
from datetime import timedelta

from dapr.actor import Actor, ActorId, ActorInterface, ActorProxy, ActorProxyFactory, Remindable, actormethod
from dapr.actor.runtime.config import ActorReentrancyConfig, ActorRuntimeConfig, ActorTypeConfig
from dapr.actor.runtime.runtime import ActorRuntime
from dapr.clients import DaprClient
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI, Request

def now_ms():
    return int(time.time() * 1000)


APP_ID = os.environ.get("APP_ID", "actors")
LOG = {"timer": [], "deactivated": [], "turns": [], "events": []}
# Deactivations also go to this file when set: they outlive the process (Ctrl-C, daca down).
DEACTIVATIONS = os.environ.get("DEACTIVATIONS_FILE")


def deactivated(actor_type: str, id: str):
    LOG["deactivated"].append({"type": actor_type, "id": id, "at": now_ms()})
    if DEACTIVATIONS:
        with open(DEACTIVATIONS, "a") as out:
            out.write(f"{actor_type}/{id}\n")


class CounterInterface(ActorInterface):
    @actormethod(name="Increment")
    async def increment(self, by: int) -> int: ...

    @actormethod(name="Get")
    async def get(self) -> dict: ...

    @actormethod(name="Remind")
    async def remind(self, seconds: float) -> None: ...

    @actormethod(name="Tick")
    async def tick(self, seconds: float) -> None: ...

    @actormethod(name="Hold")
    async def hold(self, ms: int) -> dict: ...

    @actormethod(name="Whoami")
    async def whoami(self) -> str: ...

    @actormethod(name="Announce")
    async def announce(self) -> None: ...


class Counter(Actor, CounterInterface, Remindable):
    async def _on_deactivate(self) -> None:
        deactivated("Counter", self.id.id)

    async def increment(self, by: int) -> int:
        count = (await self._state_manager.try_get_state("count"))[1] or 0
        await self._state_manager.set_state("count", count + by)
        await self._state_manager.save_state()
        return count + by

    async def get(self) -> dict:
        count = (await self._state_manager.try_get_state("count"))[1] or 0
        fires = (await self._state_manager.try_get_state("reminded"))[1] or 0
        return {"count": count, "reminded": fires}

    async def remind(self, seconds: float) -> None:
        every = timedelta(seconds=seconds)
        await self.register_reminder("again", b"remembered", every, every)

    async def receive_reminder(self, name, state, due_time, period, ttl=None) -> None:
        fires = (await self._state_manager.try_get_state("reminded"))[1] or 0
        await self._state_manager.set_state("reminded", fires + 1)
        await self._state_manager.save_state()

    async def tick(self, seconds: float) -> None:
        every = timedelta(seconds=seconds)
        await self.register_timer("tick", self.on_tick, "tock", every, every)

    async def on_tick(self, state) -> None:
        LOG["timer"].append({"id": self.id.id, "state": state, "at": now_ms()})

    async def hold(self, ms: int) -> dict:
        start = now_ms()
        await asyncio.sleep(ms / 1000)
        turn = {"id": self.id.id, "start": start, "end": now_ms()}
        LOG["turns"].append(turn)
        return turn

    async def whoami(self) -> str:
        return APP_ID

    async def announce(self) -> None:
        with DaprClient() as client:
            client.publish_event("pubsub", "counted", f'{{"id":"{self.id.id}"}}', data_content_type="application/json")


class PingerInterface(ActorInterface):
    @actormethod(name="Ping")
    async def ping(self, peer: str) -> str: ...

    @actormethod(name="Pong")
    async def pong(self, caller: str) -> str: ...

    @actormethod(name="Echo")
    async def echo(self) -> str: ...


# Short client timeouts, so a call that would wait forever (A -> B -> A without reentrancy)
# fails in seconds instead of the SDK's 60.
PROXIES = ActorProxyFactory(http_timeout_seconds=3)


class Pinger(Actor, PingerInterface):
    async def ping(self, peer: str) -> str:
        other = ActorProxy.create("Pinger", ActorId(peer), PingerInterface, PROXIES)
        return await other.Pong(self.id.id)

    async def pong(self, caller: str) -> str:
        back = ActorProxy.create("Pinger", ActorId(caller), PingerInterface, PROXIES)
        return "pong:" + await back.Echo()

    async def echo(self) -> str:
        return "echo:" + self.id.id


class IdlerInterface(ActorInterface):
    @actormethod(name="Touch")
    async def touch(self) -> int: ...


class Idler(Actor, IdlerInterface):
    async def _on_deactivate(self) -> None:
        deactivated("Idler", self.id.id)

    async def touch(self) -> int:
        return now_ms()


app = FastAPI(title="actors")
actors = DaprActor(app)
reentrant = os.environ.get("REENTRANT") == "1"
ActorRuntime.set_actor_config(
    ActorRuntimeConfig(
        actor_type_configs=[
            ActorTypeConfig("Pinger", reentrancy=ActorReentrancyConfig(enabled=reentrant)),
            ActorTypeConfig("Idler", actor_idle_timeout=timedelta(seconds=2)),
        ]
    )
)


@app.on_event("startup")
async def register():
    for actor in (Counter, Pinger, Idler):
        await actors.register_actor(actor)


def counter(id: str):
    return ActorProxy.create("Counter", ActorId(id), CounterInterface)


@app.post("/counter/{id}/increment")
async def increment(id: str, by: int = 1):
    return {"count": await counter(id).Increment(by)}


@app.get("/counter/{id}")
async def get(id: str):
    return await counter(id).Get()


@app.post("/counter/{id}/{what}")
async def act(id: str, what: str, seconds: float = 1.0, ms: int = 0):
    proxy = counter(id)
    calls = {
        "remind": lambda: proxy.Remind(seconds),
        "tick": lambda: proxy.Tick(seconds),
        "hold": lambda: proxy.Hold(ms),
        "whoami": lambda: proxy.Whoami(),
        "announce": lambda: proxy.Announce(),
    }
    return {"result": await calls[what]()}


@app.post("/ping/{id}")
async def ping(id: str, peer: str):
    proxy = ActorProxy.create("Pinger", ActorId(id), PingerInterface, PROXIES)
    return {"result": await proxy.Ping(peer)}


@app.post("/idler/{id}")
async def idler(id: str):
    return {"at": await ActorProxy.create("Idler", ActorId(id), IdlerInterface).Touch()}


@app.post("/counted")
async def counted(request: Request):
    """The declarative subscription's route: it records the event and counts it on an actor."""
    event = await request.json()
    LOG["events"].append(event)
    await counter("events").Increment(1)
    return {"status": "SUCCESS"}


@app.get("/log")
async def log():
    return LOG
