"""The benchmark's fixed-cost model on LitServe, batched: python litserve_costly.py PORT MAX_BATCH TIMEOUT_S."""

import os
import sys
import time

import litserve as ls

FIXED = float(os.environ.get("BENCH_FIXED_MS", "5")) / 1000.0
PER_ITEM = float(os.environ.get("BENCH_ITEM_MS", "0.05")) / 1000.0


class Costly(ls.LitAPI):
    def setup(self, device):
        pass

    def decode_request(self, request):
        return float(request["x"])

    def batch(self, inputs):
        return list(inputs)

    def predict(self, xs):
        time.sleep(FIXED + PER_ITEM * len(xs))
        return [2 * x for x in xs]

    def unbatch(self, output):
        return list(output)

    def encode_response(self, output):
        return {"y": output}


if __name__ == "__main__":
    port, size, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    api = Costly(max_batch_size=size, batch_timeout=timeout)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")
