"""Compile src/modelaas/oip/proto/open_inference.proto into the FileDescriptorSet modelaas loads.

Run after changing the .proto (needs grpcio-tools, in the dev extra)::

    python scripts/compile_oip_proto.py

tests/oip/test_grpc.py checks that the checked-in open_inference.binpb is this compilation's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parents[1] / "src" / "modelaas" / "oip" / "proto"


def compile_proto(out: Path) -> None:
    from grpc_tools import protoc

    code = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--descriptor_set_out={out}", str(PROTO_DIR / "open_inference.proto")]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")


if __name__ == "__main__":
    compile_proto(PROTO_DIR / "open_inference.binpb")
    sys.exit(0)
