"""A model with a fixed cost per call (like a GPU kernel launch) and a small cost per item.

``Batched`` takes up to 64 requests per call; ``Single`` is the same model called once per
request. The peers' copies of this model are in bench/peers/. Costs come from the
environment (BENCH_FIXED_MS, BENCH_ITEM_MS) so that every server runs the same model.
"""

import os
import time

from modelaas import Batch, Input, Model, batched

FIXED = float(os.environ.get("BENCH_FIXED_MS", "5")) / 1000.0
PER_ITEM = float(os.environ.get("BENCH_ITEM_MS", "0.05")) / 1000.0


class Batched(Model):
    @batched(max_size=64, max_wait_ms=5)
    def predict(self, x: Batch[float] = Input(0.0)) -> list[dict]:
        time.sleep(FIXED + PER_ITEM * len(x))
        return [{"y": v * 2} for v in x]


class Single(Model):
    def predict(self, x: float = Input(0.0)) -> dict:
        time.sleep(FIXED + PER_ITEM)
        return {"y": x * 2}
