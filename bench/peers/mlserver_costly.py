"""The benchmark's fixed-cost model as an MLServer runtime (adaptive batching by model-settings.json)."""

import os
import time

from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

FIXED = float(os.environ.get("BENCH_FIXED_MS", "5")) / 1000.0
PER_ITEM = float(os.environ.get("BENCH_ITEM_MS", "0.05")) / 1000.0


class Costly(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        data = list(payload.inputs[0].data.root)
        time.sleep(FIXED + PER_ITEM * len(data))
        return InferenceResponse(
            model_name=self.name,
            outputs=[ResponseOutput(name="y", shape=[len(data), 1], datatype="FP64", data=[2 * v for v in data])],
        )
