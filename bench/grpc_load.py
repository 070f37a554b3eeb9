"""A closed-loop gRPC load generator for ``inference.GRPCInferenceService/ModelInfer`` (wrk has no gRPC).

    python bench/grpc_load.py 127.0.0.1:8001 iris --connections 16 --seconds 6

``--connections`` concurrent calls (in flight at once), spread over as many channels (HTTP/2
connections) as asked (default: one per 8 calls), for ``--seconds``; prints one JSON line:
requests/s, p50/p90/p99 in ms, errors. The request is one FP32 row of 4 as raw contents.
The same client and request drive every server of a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from modelaas.oip.grpc_server import message_classes

METHOD = "/inference.GRPCInferenceService/ModelInfer"


async def run(target: str, model: str, input_name: str, connections: int, seconds: float, channels: int) -> dict:
    import grpc

    m = message_classes()
    request = m["ModelInferRequest"](model_name=model)
    request.inputs.add(name=input_name, datatype="FP32", shape=[1, 4])
    request.raw_input_contents.append(np.array([[5.9, 3.0, 5.1, 1.8]], dtype=np.float32).tobytes())
    payload = request.SerializeToString()
    opened = [grpc.aio.insecure_channel(target) for _ in range(max(1, channels))]
    calls = [
        ch.unary_unary(METHOD, request_serializer=lambda b: b, response_deserializer=m["ModelInferResponse"].FromString)
        for ch in opened
    ]
    latencies: list[float] = []
    errors = 0
    for call in calls:  # connect and warm
        await call(payload, timeout=30)
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        call = calls[i % len(calls)]
        while True:
            start = time.perf_counter()
            if start >= stop:
                return
            try:
                await call(payload, timeout=10)
                latencies.append(time.perf_counter() - start)
            except grpc.aio.AioRpcError:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    wall = time.perf_counter() - began
    for ch in opened:
        await ch.close()
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else float("nan")

    return {
        "rps": len(latencies) / wall,
        "requests": float(len(latencies)),
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "errors": float(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target")
    parser.add_argument("model")
    parser.add_argument("--input", default="x")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--channels", type=int, default=0, help="HTTP/2 connections (default: one per 8 calls)")
    args = parser.parse_args()
    channels = args.channels or max(1, (args.connections + 7) // 8)
    print(json.dumps(asyncio.run(run(args.target, args.model, args.input, args.connections, args.seconds, channels))))


if __name__ == "__main__":
    main()
