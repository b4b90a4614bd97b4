"""Data on stdout: paths of written files and JSON documents, one per line or document, so
``samplernn ... | xargs`` and ``$(samplernn ...)`` work. Everything else goes to stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def print_json(document: Any) -> None:
    """One JSON document on stdout (non-finite numbers become null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    sys.stdout.write(json.dumps(clean(document), indent=2) + "\n")
    sys.stdout.flush()


def print_path(path: os.PathLike[str] | str) -> None:
    """A path on stdout, one per line, flushed at once (for pipes and `xargs`)."""
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
