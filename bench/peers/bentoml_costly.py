"""The benchmark's fixed-cost model on BentoML, batched: bentoml serve bentoml_costly:Costly."""

import os
import time

import bentoml

FIXED = float(os.environ.get("BENCH_FIXED_MS", "5")) / 1000.0
PER_ITEM = float(os.environ.get("BENCH_ITEM_MS", "0.05")) / 1000.0


@bentoml.service(workers=1)
class Costly:
    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=10000)
    def predict(self, x: list[float]) -> list[float]:
        time.sleep(FIXED + PER_ITEM * len(x))
        return [2 * v for v in x]
