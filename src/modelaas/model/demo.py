"""The built-in demo model, served when no model is installed.

It exercises every kind of argument (a required file, a choice, a range-checked int, a
float, a bool, a list of floats), answers JSON or a PNG picture, and trains for a few
seconds reporting progress. It is not a real model and says so in its metadata.
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from typing import Any, Literal

from modelaas.model.files import File
from modelaas.model.interface import Input, Model, TrainingContext


class DemoModel(Model):
    """A demonstration model built into modelaas: it describes the file you send."""

    metadata = {
        "name": "modelaas-demo",
        "summary": "Built-in demo model of modelaas; served because no model is installed.",
        "description": (
            "This is not a real model. modelaas serves it because no model package is installed. "
            "Install a package that declares a 'deepaas.v2.model', 'deepaas.model' or 'modelaas.model' "
            "entry point, or run 'modelaas serve --model pkg.module:attr'."
        ),
        "demo": True,
        "license": "Apache-2.0",
    }

    def predict(
        self,
        image: File = Input(description="Any file; a picture works best.", media_types=("image/*",)),
        label: Literal["cat", "dog", "bird"] = Input("cat", description="The label to score."),
        top_k: int = Input(3, ge=1, le=100, description="How many scores to return."),
        threshold: float = Input(0.5, ge=0, le=1, description="Scores below it are dropped."),
        invert: bool = Input(False, description="Invert the scores."),
        weights: list[float] = Input([1.0, 0.5, 0.25], description="Weights of the scores."),
        accept: Literal["application/json", "image/png"] = Input(
            "application/json", description="Answer as JSON or as a PNG picture of the scores."
        ),
    ) -> Any:
        digest = hashlib.sha256()
        size = 0
        with image.open() as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        seed = int.from_bytes(digest.digest()[:8], "big")
        scores: list[dict[str, Any]] = []
        for i in range(top_k):
            raw = ((seed >> (i % 56)) & 0xFF) / 255.0
            weight = weights[i % len(weights)] if weights else 1.0
            score = round((1 - raw if invert else raw) * weight, 4)
            if score >= threshold:
                scores.append({"rank": i + 1, "label": label, "score": score})
        if accept == "image/png":
            return _bar_chart([s["score"] for s in scores] or [0.0])
        return {
            "file": {"name": image.original_filename, "content_type": image.content_type, "size": size},
            "sha256": digest.hexdigest(),
            "scores": scores,
        }

    def train(
        self,
        context: TrainingContext,
        epochs: int = Input(5, ge=1, le=100, description="Epochs to run."),
        epoch_seconds: float = Input(0.5, ge=0, le=60, description="Seconds each epoch takes."),
    ) -> dict[str, Any]:
        loss = 1.0
        for epoch in range(1, epochs + 1):
            if context.cancelled:
                break
            time.sleep(epoch_seconds)
            loss *= 0.7
            context.logger.info("epoch %d/%d loss=%.4f", epoch, epochs, loss)
            context.report(progress=epoch / epochs, epoch=epoch, loss=round(loss, 4))
        return {"epochs": epochs, "final_loss": round(loss, 4)}


def _bar_chart(values: list[float], width: int = 160, height: int = 100) -> bytes:
    """A PNG bar chart of ``values`` in 0..1, drawn without any imaging library."""
    bars = max(1, len(values))
    bar_w = max(1, width // bars)
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type 0
        level = 1 - y / height
        for x in range(width):
            i = min(x // bar_w, bars - 1)
            on = values[i] >= level and x % bar_w < bar_w - 2
            row += bytes((40, 110, 200) if on else (245, 245, 245))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
