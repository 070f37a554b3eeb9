"""Identity of a running server, as jobs record it (their ``owner``)."""

from __future__ import annotations

import os
import secrets
import socket

PARENT_PID_ENV = "_MODELAAS_PARENT_PID"
"""Set by a backend to the pid of the process that starts a training: the one it watches."""


def new_server_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
