"""Identity of a running server, as jobs record it (their ``owner``)."""

from __future__ import annotations

import os
import secrets
import socket


def new_server_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
