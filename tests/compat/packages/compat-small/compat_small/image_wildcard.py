"""A model whose ``accept`` offers a wildcard media type, ``image/*``, beside JSON.

It draws a grey square of ``side`` pixels as a PNG: the image itself for an image type,
a description of it for JSON.
"""

import hashlib
import struct
import zlib

from marshmallow import fields, validate

ACCEPT = ("application/json", "image/*")


def get_metadata():
    return {"description": "Draws a grey square; answers JSON or the image.", "version": "0.1.0"}


def get_predict_args():
    return {
        "side": fields.Int(load_default=2, validate=validate.Range(min=1, max=64)),
        "accept": fields.Str(
            load_default=ACCEPT[0],
            validate=validate.OneOf(list(ACCEPT)),  # a fresh list: DEEPaaS appends "*/*" to it
            metadata={"location": "headers", "description": "JSON, or the image itself."},
        ),
    }


def _chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def square_png(side):
    """A ``side`` x ``side`` 8-bit greyscale PNG."""
    rows = b"".join(b"\x00" + bytes([0x80]) * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def predict(side, accept=ACCEPT[0]):
    png = square_png(side)
    if accept.startswith("image/"):
        return png
    return {"side": side, "png_size": len(png), "png_sha256": hashlib.sha256(png).hexdigest()}
