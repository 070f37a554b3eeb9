"""The kserve SDK's REST client against a modelaas server: run as ``python kserve_rest.py http://host:port``.

A process of its own: kserve registers the protocol's messages in protobuf's default pool,
as tritonclient.grpc does, and the two cannot be imported into one process.
Prints one JSON object with what the client saw.
"""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


async def main(url: str) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30))
    seen = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, "iris"),
    }
    rows = np.array([[5.0, 3.4, 1.5, 0.2], [6.6, 3.0, 5.6, 2.0]], dtype=np.float32)
    x = InferInput("x", list(rows.shape), "FP32", data=rows.ravel().tolist())
    result = await client.infer(url, InferRequest("iris", [x], request_id="k-1"), model_name="iris")
    seen["json"] = {"id": result.id, "label": result.outputs[0].as_numpy().tolist()}
    x = InferInput("x", list(rows.shape), "FP32")
    x.set_data_from_numpy(rows, binary_data=True)
    request = InferRequest("iris", [x], request_outputs=[RequestedOutput("label", parameters={"binary_data": True})])
    result = await client.infer(url, request, model_name="iris")
    seen["binary"] = {"label": result.outputs[0].as_numpy().tolist()}
    await client.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
