"""A client in another language: nats-py and msgpack, as the book's
"Calling from another language" describes, against a lattice whose server
requires credentials (it logs in as a caller, with an nkey seed).

Usage: python_client.py URL SEED_FILE LATTICE
Prints `ok` when every check holds; fails with a traceback otherwise.
"""

import asyncio
import sys

import msgpack
import nats
from nats.errors import NoRespondersError


def status(reply):
    return (reply.headers or {}).get("Lattice-Status")


async def main(url: str, seed_file: str, lattice: str) -> None:
    refused = []

    async def on_error(e):
        refused.append(str(e))

    # ANCHOR: connect
    nc = await nats.connect(
        url,
        nkeys_seed=seed_file,
        connect_timeout=5,
        max_reconnect_attempts=0,
        error_cb=on_error,
    )
    rpc = f"lattice.{lattice}.rpc"
    # ANCHOR_END: connect

    # ANCHOR: calls
    # A plain call: the arguments as a map keyed by argument name.
    reply = await nc.request(
        f"{rpc}.echo.echo.echo", msgpack.packb({"text": "from python"}), timeout=5
    )
    assert status(reply) is None, reply.headers
    assert msgpack.unpackb(reply.data) == "from python", reply.data

    # A keyed call: the key in the Lattice-Key header. Ten adds, counted.
    key = {"Lattice-Key": "python"}
    for _ in range(10):
        reply = await nc.request(
            f"{rpc}.counter.counter.add", msgpack.packb({"by": 1}), timeout=5, headers=key
        )
        assert status(reply) is None, reply.headers
    reply = await nc.request(f"{rpc}.counter.counter.get", b"", timeout=5, headers=key)
    assert msgpack.unpackb(reply.data) == 10, reply.data
    # ANCHOR_END: calls

    # ANCHOR: errors
    # Errors: a status header and a map {kind, message}.
    reply = await nc.request(f"{rpc}.echo.echo.shout", b"", timeout=5)
    assert status(reply) == "404", reply.headers
    assert msgpack.unpackb(reply.data)["kind"] == "unknown_method", reply.data
    # ANCHOR_END: errors
    reply = await nc.request(f"{rpc}.echo.echo.echo", b"\xc1 not msgpack", timeout=5)
    assert status(reply) == "400", reply.headers
    assert msgpack.unpackb(reply.data)["kind"] == "decode", reply.data
    reply = await nc.request(
        f"{rpc}.counter.counter.get", b"", timeout=5, headers={"Lattice-Key": "no/slash"}
    )
    assert status(reply) == "422", reply.headers
    assert msgpack.unpackb(reply.data)["kind"] == "invalid_name", reply.data

    # No host runs the actor: the server answers (no responders).
    try:
        await nc.request(f"{rpc}.nobody.echo.echo", b"", timeout=5)
        raise AssertionError("a call to no actor was answered")
    except NoRespondersError:
        pass

    # A caller may not serve an actor's calls: the server refuses the
    # subscription, and every call still reaches the host.
    stolen = []

    async def steal(msg):
        stolen.append(msg)

    await nc.subscribe(f"{rpc}.echo.>", queue="echo", cb=steal)
    await nc.flush()
    for i in range(10):
        reply = await nc.request(
            f"{rpc}.echo.echo.echo", msgpack.packb({"text": f"call {i}"}), timeout=5
        )
        assert msgpack.unpackb(reply.data) == f"call {i}", reply.data
    await asyncio.sleep(0.3)
    assert not stolen, stolen
    assert any("permissions violation" in e.lower() for e in refused), refused

    await nc.close()
    print("ok")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
