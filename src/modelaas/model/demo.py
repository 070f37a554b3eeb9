"""The built-in demo model, served when no model is installed.

It exercises every kind of argument (a required file, a choice, a range-checked int, a
float, a bool, a list of floats), answers JSON (the labels cat, dog and bird, scored from
the file's hash, best first) or a PNG picture, and trains for a few seconds reporting
progress. It is not a real model and says so in its metadata.
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from typing import Any, Literal

from modelaas.model.files import File
from modelaas.model.interface import Input, Model, TrainingContext

LABELS = ("cat", "dog", "bird")
"""What the demo "recognises"."""


def rank_labels(digest: bytes, *, invert: bool = False, weights: list[float] | None = None) -> list[dict[str, Any]]:
    """Every label with a score made up from the file's hash (the scores sum to 1), best first,
    ranked 1, 2, 3: the same file always gets the same answer."""
    raw = [(digest[i] + 1) / 257 for i in range(len(LABELS))]
    if invert:
        raw = [1 - r for r in raw]
    weighted = [r * max(0.0, weights[i] if weights and i < len(weights) else 1.0) for i, r in enumerate(raw)]
    total = sum(weighted)
    shares = [w / total if total > 0 else 1 / len(LABELS) for w in weighted]
    order = sorted(range(len(LABELS)), key=lambda i: (-shares[i], i))
    return [{"rank": n, "label": LABELS[i], "score": round(shares[i], 4)} for n, i in enumerate(order, start=1)]


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
        label: Literal["cat", "dog", "bird"] = Input(
            "cat", description="The label you expect: the answer says where it ranks."
        ),
        top_k: int = Input(3, ge=1, le=len(LABELS), description="How many labels to return, best first."),
        threshold: float = Input(0.0, ge=0, le=1, description="Labels scoring below it are dropped."),
        invert: bool = Input(False, description="Invert the scores (the worst label comes first)."),
        weights: list[float] = Input(
            [1.0, 1.0, 1.0], description="Weights of the labels' scores, in the order cat, dog, bird."
        ),
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
        ranked = rank_labels(digest.digest(), invert=invert, weights=weights)
        expected = next(s for s in ranked if s["label"] == label)
        scores = [s for s in ranked[:top_k] if s["score"] >= threshold]
        if accept == "image/png":
            return _bar_chart([s["score"] for s in scores] or [0.0])
        return {
            "file": {"name": image.original_filename, "content_type": image.content_type, "size": size},
            "sha256": digest.hexdigest(),
            "scores": scores,
            "expected": expected,
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
