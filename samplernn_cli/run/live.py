"""``NAME_args.json``: the settings a user may edit while training runs.

The trainer writes the file when a run starts and looks at it after every iteration (a stat
call; the file is parsed only when it changed). A valid edit takes effect at once and is
logged. An invalid one (broken JSON, a wrong type, an unknown key, zero or a negative number)
is reported once and ignored: training goes on with the last good values. Keys left out keep
their current values. A deleted file is reported once; write it again to make edits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from samplernn_cli.config import LiveSettings
from samplernn_cli.config.rules import declarations
from samplernn_cli.errors import ConfigError
from samplernn_cli.fileio import atomic_write

logger = logging.getLogger("samplernn")


def parse_live_settings(text: str, current: LiveSettings) -> LiveSettings:
    """New settings from the file's text, with missing keys taken from ``current``.

    Raises:
        ConfigError: the text is not a JSON object of known keys with valid values.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError("must hold a JSON object ({...})")
    types = {f.name: f.type for f in fields(LiveSettings)}
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    merged = current.to_dict()
    declared = declarations(LiveSettings)
    for key, value in data.items():
        parse = declared[key].parse
        if isinstance(value, str) and parse is not None and declared[key].rule.kind is not str:
            value = parse(value)  # "all" for keep_checkpoints
        wants_float = types[key] in ("float", float)
        if wants_float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        merged[key] = value
    settings = LiveSettings.from_dict(merged)
    settings.validate()
    return settings


class LiveSettingsFile:
    """Keeps ``NAME_args.json`` and the settings in effect in step.

    ``check`` may refuse settings this installation cannot honour (raising
    :class:`ConfigError`): such an edit is reported and ignored like an invalid one.
    """

    def __init__(
        self,
        path: Path,
        settings: LiveSettings,
        check: Callable[[LiveSettings], None] | None = None,
    ) -> None:
        self.path = path
        self.current = settings
        self.check = check
        self._seen: tuple[int, int] | None = None
        self._reported: str | None = None

    def write(self) -> None:
        """Write the settings in effect (atomically)."""
        text = json.dumps(self.current.to_dict(), indent=2) + "\n"
        atomic_write(self.path, lambda handle: handle.write(text.encode("utf-8")))
        self._seen = self._signature()

    def _signature(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    def _report_once(self, key: str, message: str) -> None:
        if self._reported != key:
            self._reported = key
            logger.warning(message)

    def poll(self) -> LiveSettings | None:
        """Re-read the file if it changed; return the new settings if a valid edit was made."""
        signature = self._signature()
        if signature is None:
            self._report_once(
                "missing",
                f"{self.path.name} was deleted; training goes on with the current settings "
                "(write the file again to change them)",
            )
            return None
        if signature == self._seen:
            return None
        self._seen = signature
        try:
            text = self.path.read_text(encoding="utf-8")
            settings = parse_live_settings(text, self.current)
            if self.check is not None:
                self.check(settings)
        except (OSError, UnicodeDecodeError) as exc:
            self._report_once(f"unreadable:{signature}", f"cannot read {self.path.name}: {exc}")
            return None
        except ConfigError as exc:
            self._report_once(
                f"invalid:{text}",
                f"ignoring the edit to {self.path.name}: {exc}; "
                "training goes on with the last good settings",
            )
            return None
        self._reported = None
        if settings == self.current:
            return None
        changes = ", ".join(
            f"{key} {old} -> {new}"
            for key, old in self.current.to_dict().items()
            if (new := settings.to_dict()[key]) != old
        )
        logger.info(f"{self.path.name} changed: {changes}")
        self.current = settings
        return settings
