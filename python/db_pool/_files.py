"""Whether a file named in a configuration can be read (password files,
CA certificates, client certificates and keys): checked before anything
connects, by the configuration model and by create_pool's TLS keywords."""

from __future__ import annotations

import json
import os


def unreadable(path: str) -> str:
    """Why a file cannot be read ("" if it can)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"cannot read {json.dumps(path, ensure_ascii=False)}: {exc.strerror or exc}"
    if os.path.isdir(path):
        return f"{json.dumps(path, ensure_ascii=False)} is a directory, not a file"
    return ""
