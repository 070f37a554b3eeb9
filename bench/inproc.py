"""The serving stack in one process, without sockets: CPU per request, and profiles of it.

Drives the app through uvicorn's own httptools protocol (the one serving processes use,
with a fake transport) on uvloop, from ``--connections`` keep-alive "connections" at once.
No kernel, no client: what is left is the Python work per request, which is what the
optimisations in docs/benchmarks.md change. Examples::

    python bench/inproc.py modelaas                     # microseconds of CPU per request
    python bench/inproc.py hello modelaas -c 16         # side by side
    python bench/inproc.py modelaas --profile out.prof  # cProfile of the loop thread
    python bench/inproc.py modelaas --set predict_inline=always
    python bench/inproc.py modelaas --json-body --set tokens="predict $TOKEN" --header "Authorization: Bearer $TOKEN"

Not a substitute for bench/run.py (real sockets, a real client): a tool to see where time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "models")]


OIP_BODY = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[5.9,3.0,5.1,1.8]}]}'


def request_bytes(headers: list[str], json_body: bool, oip: bool = False) -> bytes:
    """The request every "connection" sends: the trivial prediction, x in the query or in a JSON body;
    or (``oip``) an Open Inference Protocol infer request of one iris row."""
    lines = ["Host: 127.0.0.1:5000", *headers]
    if oip:
        body = OIP_BODY
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        target = "/v2/models/iris/infer"
    elif json_body:
        body = b'{"x": 3}'
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        target = "/v2/models/trivial/predict/"
    else:
        body = b""
        lines += ["Content-Length: 0"]
        target = "/v2/models/trivial/predict/?x=3"
    head = "".join(f"{line}\r\n" for line in lines)
    return f"POST {target} HTTP/1.1\r\n{head}\r\n".encode() + body


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False
        self.first: bytes | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 5000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: Any) -> None:
        if self.first is None:
            self.first = bytes(data)
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def build(kind: str, data_dir: Path, overrides: dict[str, str], plain: bool, oip: bool) -> tuple[Any, Any, Any]:
    """(asgi app, uvicorn protocol class, lifespan context manager factory)."""
    import uvicorn

    if kind == "hello":
        import hello
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return hello.app, HttpToolsProtocol, contextlib.nullcontext
    from modelaas.runtime import Runtime
    from modelaas.serve.worker import bounded_http_protocol
    from modelaas.settings import Settings
    from modelaas.web.app import create_app

    model = ("bench_models.iris:Iris", "iris") if oip else ("bench_models.trivial", "trivial")
    settings = Settings.load({"data_dir": str(data_dir), "model": model[0], "model_name": model[1], **overrides})
    from modelaas.jobs.wiring import SupervisedTrainings

    trainings = SupervisedTrainings(settings, "inproc")  # as a serving process: no scheduler here
    app = create_app(settings, runtime=Runtime.load(settings), trainings=trainings)
    protocol = bounded_http_protocol(settings.max_header_size, settings.header_timeout)
    if plain:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as protocol
    del uvicorn
    return app, protocol, lambda: app.router.lifespan_context(app)


async def drive(
    kind: str,
    connections: int,
    requests: int,
    overrides: dict[str, str],
    profile: str | None,
    request: bytes,
    plain: bool = False,
    oip: bool = False,
) -> None:
    import uvicorn
    from uvicorn.server import ServerState

    with tempfile.TemporaryDirectory() as tmp:
        app, protocol_class, lifespan = build(kind, Path(tmp), overrides, plain, oip)
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, server_header=False)
        config.load()
        state = ServerState()
        loop = asyncio.get_running_loop()
        async with _lifespan(lifespan):
            if kind != "hello":
                await app.state.modelaas.runtime.warm()

            async def client(n: int) -> None:
                proto = protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
                transport = FakeTransport()
                proto.connection_made(transport)
                done: list[asyncio.Future[None]] = []
                original = proto.on_response_complete

                def complete() -> None:
                    original()
                    if done and not done[-1].done():
                        done[-1].set_result(None)

                proto.on_response_complete = complete
                for _ in range(n):
                    fut = loop.create_future()
                    done.append(fut)
                    proto.data_received(request)
                    await fut
                    done.clear()
                proto.connection_lost(None)
                if transport.first is not None and not transport.first.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"The server answered {transport.first[:200]!r}: not a measure of success.")

            await asyncio.gather(*(client(200) for _ in range(connections)))  # warm up
            per = max(1, requests // connections)
            prof = cProfile.Profile() if profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            await asyncio.gather(*(client(per) for _ in range(connections)))
            if prof and profile:
                prof.disable()
                prof.dump_stats(profile)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            n = per * connections
            print(
                f"{kind:10s} c={connections:<3d} {n / wall:9,.0f} req/s  "
                f"{wall / n * 1e6:7.1f} us wall  {cpu / n * 1e6:7.1f} us cpu per request"
            )


@contextlib.asynccontextmanager
async def _lifespan(factory: Any) -> AsyncIterator[None]:
    cm = factory()
    if hasattr(cm, "__aenter__"):
        async with cm:
            yield
    else:
        with cm:
            yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kinds", nargs="+", choices=["hello", "modelaas"])
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("--set", action="append", default=[], help="a modelaas setting, name=value")
    parser.add_argument("--profile", help="write a cProfile of the measured requests here")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--header", action="append", default=[], help="an extra request header, 'Name: value'")
    parser.add_argument("--json-body", action="store_true", help="send x in a JSON body instead of the query")
    parser.add_argument(
        "--oip",
        action="store_true",
        help="OIP infer on the iris model (BENCH_IRIS_MODEL: a joblib file, as bench/oip_bench.py makes)",
    )
    parser.add_argument(
        "--plain-protocol",
        action="store_true",
        help="uvicorn's httptools protocol, not the serving processes' bounded one",
    )
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    os.environ.setdefault("MODELAAS_LOG_LEVEL", "warning")
    for kind in args.kinds:
        request = request_bytes(args.header, args.json_body, args.oip)
        coro = drive(
            kind, args.connections, args.requests, overrides, args.profile, request, args.plain_protocol, args.oip
        )
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)


if __name__ == "__main__":
    main()
