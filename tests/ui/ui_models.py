"""A typed model for the UI tests: the kinds of argument the demo lacks, and answers of every kind."""

from __future__ import annotations

import base64
import datetime
import io
import struct
import wave
import zlib
from typing import Any, Literal

from modelaas import File, Input, Model, TrainingContext


def _png() -> bytes:
    row = b"\x00" + bytes((220, 60, 60)) * 8
    raw = zlib.compress(row * 8)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A short silent WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(b"\x80" * int(seconds * rate))
    return out.getvalue()


PICTURE_URI = "data:image/png;base64," + base64.b64encode(_png()).decode("ascii")
EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


class Kinds(Model):
    """Echoes its arguments; answers JSON with a data-URI picture, a WAV sound, CSV text or a zip file."""

    metadata = {
        "summary": "Arguments and answers of every kind (UI tests).",
        "author": "modelaas tests",
        "homepage": "https://example.org/kinds",
        "tags": ["ui", "tests"],
    }

    def predict(
        self,
        name: str = Input(description="Who is asking.", max_length=20),
        sound: File | None = Input(None, description="A sound to send back.", media_types=("audio/*",)),
        when: datetime.date = Input(datetime.date(2024, 1, 31), description="A day."),
        at: datetime.datetime | None = Input(None, description="A moment."),
        options: dict[str, Any] = Input({"depth": 2}, description="Free options."),
        colours: list[Literal["red", "green", "blue"]] = Input(["red"], description="Colours to use."),
        flag: bool | None = Input(None, description="Maybe."),
        counts: list[int] = Input([], description="Some counts."),
        accept: Literal["application/json", "audio/wav", "text/csv", "application/zip"] = Input(
            "application/json", description="What to answer."
        ),
    ) -> Any:
        if accept == "audio/wav":
            if sound is None:
                return wav()
            with sound.open() as fh:
                return fh.read()
        if accept == "text/csv":
            return f"name,colours\n{name},{' '.join(colours)}\n"
        if accept == "application/zip":
            return EMPTY_ZIP
        return {
            "args": {
                "name": name,
                "when": when.isoformat(),
                "at": at.isoformat() if at else None,
                "options": options,
                "colours": colours,
                "flag": flag,
                "counts": counts,
                "sound": sound.original_filename if sound else None,
            },
            "picture": PICTURE_URI,
        }


class Tuned(Model):
    """Trains in an instant, reporting two metrics that depend on its rate; writes a weights file."""

    def predict(self, x: int = 1) -> dict:
        return {"x": x}

    def train(self, context: TrainingContext, rate: float = Input(0.1, ge=0, le=1)) -> dict:
        context.report(progress=1.0, loss=1 - rate, accuracy=rate / 2)
        (context.output_dir / "weights.txt").write_text(f"rate={rate}\n")
        return {"rate": rate}
