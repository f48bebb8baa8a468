"""Run-time settings, read from ``GREENWEAVE_*`` environment variables.

``greenweave.config.NAME`` returns a setting's value: the value assigned in
code if any, else the environment variable ``GREENWEAVE_NAME`` (validated the
first time it is read: a bad value raises ``ValueError`` naming the variable),
else the default.  Settings that name implementations (``resolver``,
``threadpool``, ``fileobject``) accept a short alias or a dotted
``module.Class`` path and return the class.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable

__all__ = ["config", "Config", "Setting"]

_MISSING = object()


def _positive_int(value: Any) -> int:
    iv = int(value)
    if iv < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return iv


def _non_negative_float(value: Any) -> float:
    fv = float(value)
    if fv < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return fv


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def _choice(*choices: str) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {value!r}")
        return text

    return validate


def _importable(aliases: dict[str, str]) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if not isinstance(value, str):
            if callable(value):
                return value
            raise ValueError(f"must be a name or a class, got {value!r}")
        path = aliases.get(value.strip().lower(), value.strip())
        module_name, _, attr = path.rpartition(".")
        if not module_name:
            raise ValueError(
                f"unknown implementation {value!r}; choose one of {', '.join(aliases)} "
                "or give a dotted module.Class path"
            )
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import {path!r}: {exc}") from exc

    return validate


def _nameservers(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return list(value)


class Setting:
    """One named setting: its environment variable, default and validator."""

    def __init__(self, name: str, default: Any, validate: Callable[[Any], Any], doc: str) -> None:
        self.name = name
        self.env = "GREENWEAVE_" + name.upper()
        self.default = default
        self.validate = validate
        self.__doc__ = doc


_SETTINGS = [
    Setting("loop", "default", _choice("default", "epoll", "selectors"),
            "The I/O backend of new loops: default (epoll where available), epoll, selectors."),
    Setting("resolver", "thread", _importable({
        "thread": "greenweave.resolver.thread.Resolver",
        "blocking": "greenweave.resolver.blocking.Resolver",
        "block": "greenweave.resolver.blocking.Resolver",  # gevent's name
        "dnspython": "greenweave.resolver.dnspython.Resolver",
    }), "The DNS resolver class: thread (default), blocking (or block), dnspython, or "
            "module.Class."),
    Setting("threadpool", "greenweave.threadpool.ThreadPool", _importable({}),
            "The class of each hub's native thread pool."),
    Setting("threadpool_size", 10, _positive_int,
            "The maximum number of native threads in each hub's thread pool."),
    Setting("threadpool_idle_task_timeout", 5.0, float,
            "Seconds an idle worker of a hub's thread pool waits for work before it "
            "exits (negative: never)."),
    Setting("fileobject", "thread", _importable({
        "thread": "greenweave.fileobject.FileObjectThread",
        "posix": "greenweave.fileobject.FileObjectPosix",
        "block": "greenweave.fileobject.FileObjectBlock",
    }), "The class greenweave.fileobject.FileObject names: thread, posix or block."),
    Setting("resolver_nameservers", None, _nameservers,
            "Name servers for the dnspython resolver (comma or space separated)."),
    Setting("resolver_timeout", None, lambda v: None if v in (None, "") else float(v),
            "Timeout in seconds for DNS lookups by the dnspython resolver."),
    Setting("track_greenlet_tree", True, _bool,
            "Record which greenlet spawned which (spawning_greenlet, spawn_tree_locals)."),
    Setting("monitor_thread", False, _bool,
            "Start a native thread that reports when the loop is blocked too long."),
    Setting("max_blocking_time", 0.1, _non_negative_float,
            "Seconds the loop may be blocked before the monitor thread reports it."),
]


class Config:
    """Holds the settings; see the module docstring."""

    def __init__(self) -> None:
        object.__setattr__(self, "_settings", {s.name: s for s in _SETTINGS})
        object.__setattr__(self, "_values", {})

    def __getattr__(self, name: str) -> Any:
        settings = object.__getattribute__(self, "_settings")
        if name not in settings:
            raise AttributeError(f"greenweave.config has no setting {name!r}")
        values = object.__getattribute__(self, "_values")
        value = values.get(name, _MISSING)
        if value is _MISSING:
            setting = settings[name]
            raw = os.environ.get(setting.env)
            if raw is None:
                value = setting.validate(setting.default) if setting.default is not None \
                    else None
            else:
                try:
                    value = setting.validate(raw)
                except ValueError as exc:
                    raise ValueError(f"invalid value for {setting.env}: {exc}") from None
            values[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def set(self, name: str, value: Any) -> None:
        """Set a setting in code (validated; a bad value raises ValueError)."""
        settings = object.__getattribute__(self, "_settings")
        if name not in settings:
            raise AttributeError(f"greenweave.config has no setting {name!r}")
        try:
            self._values[name] = settings[name].validate(value)
        except ValueError as exc:
            raise ValueError(f"invalid value for config.{name}: {exc}") from None

    def reset(self, name: str) -> None:
        """Forget any value set in code or read from the environment."""
        self._values.pop(name, None)

    def settings(self) -> dict[str, Setting]:
        return dict(self._settings)

    def __dir__(self) -> list[str]:
        return list(self._settings) + ["set", "reset", "settings"]

    def __repr__(self) -> str:
        return f"<greenweave.config settings={sorted(self._settings)}>"


config = Config()
