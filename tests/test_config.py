"""greenweave.config: defaults, GREENWEAVE_* environment variables, validation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import greenweave
from greenweave import config

pytestmark = pytest.mark.timeout(30)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with extra environment variables."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GREENWEAVE_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=20)


@pytest.fixture
def restore():
    """Forget whatever a test set in code."""
    names = list(config.settings())
    yield
    for name in names:
        config.reset(name)


def test_config_is_exported():
    assert greenweave.config is config


def test_defaults(restore, monkeypatch):
    for name in config.settings():
        monkeypatch.delenv(f"GREENWEAVE_{name.upper()}", raising=False)
        config.reset(name)
    assert config.threadpool_size == 10
    assert config.loop == "default"
    assert config.track_greenlet_tree is True
    assert config.monitor_thread is False
    assert config.max_blocking_time == pytest.approx(0.1)
    assert config.resolver_nameservers is None
    assert config.resolver_timeout is None


def test_unknown_setting_is_attribute_error(restore):
    with pytest.raises(AttributeError, match="nosuch"):
        config.nosuch  # noqa: B018
    with pytest.raises(AttributeError, match="nosuch"):
        config.set("nosuch", 1)


def test_set_validates_and_converts(restore):
    config.set("threadpool_size", "5")
    assert config.threadpool_size == 5 and isinstance(config.threadpool_size, int)
    config.threadpool_size = 7  # attribute assignment goes through set()
    assert config.threadpool_size == 7
    config.set("track_greenlet_tree", "off")
    assert config.track_greenlet_tree is False
    config.set("max_blocking_time", "0.5")
    assert config.max_blocking_time == 0.5
    config.set("resolver_nameservers", "8.8.8.8, 1.1.1.1")
    assert config.resolver_nameservers == ["8.8.8.8", "1.1.1.1"]
    config.set("loop", "SELECTORS")
    assert config.loop == "selectors"


@pytest.mark.parametrize("name, value", [
    ("threadpool_size", 0),
    ("threadpool_size", -3),
    ("threadpool_size", "abc"),
    ("track_greenlet_tree", "maybe"),
    ("max_blocking_time", -1),
    ("loop", "kqueue"),
    ("resolver", "no_dots_and_no_alias"),
    ("resolver", "no.such.module.Resolver"),
])
def test_set_rejects_bad_values_naming_the_setting(restore, name, value):
    before = getattr(config, name) if name not in ("resolver",) else None
    with pytest.raises(ValueError, match=f"config.{name}"):
        config.set(name, value)
    if before is not None:
        assert getattr(config, name) == before  # unchanged


def test_set_accepts_class_for_implementation_settings(restore):
    class MyResolver:
        pass

    config.set("resolver", MyResolver)
    assert config.resolver is MyResolver
    config.set("resolver", "collections.OrderedDict")  # any dotted module.Class path
    import collections

    assert config.resolver is collections.OrderedDict


def test_reset_forgets_value_set_in_code(restore, monkeypatch):
    monkeypatch.delenv("GREENWEAVE_THREADPOOL_SIZE", raising=False)
    config.set("threadpool_size", 3)
    config.reset("threadpool_size")
    assert config.threadpool_size == 10


def test_env_var_read(restore, monkeypatch):
    monkeypatch.setenv("GREENWEAVE_THREADPOOL_SIZE", "4")
    config.reset("threadpool_size")
    assert config.threadpool_size == 4


def test_env_var_read_in_subprocess():
    proc = _run("import greenweave; print(greenweave.config.threadpool_size)",
                GREENWEAVE_THREADPOOL_SIZE="7")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "7"


@pytest.mark.parametrize("var, value", [
    ("GREENWEAVE_THREADPOOL_SIZE", "abc"),
    ("GREENWEAVE_THREADPOOL_SIZE", "0"),
    ("GREENWEAVE_TRACK_GREENLET_TREE", "maybe"),
    ("GREENWEAVE_MAX_BLOCKING_TIME", "-2"),
])
def test_bad_env_value_raises_value_error_naming_variable(var, value):
    name = var[len("GREENWEAVE_"):].lower()
    code = (
        "import greenweave\n"  # importing must not fail: settings are read lazily
        "try:\n"
        f"    greenweave.config.{name}\n"
        "except ValueError as e:\n"
        "    print('ValueError:', e)\n"
    )
    proc = _run(code, **{var: value})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ValueError:"), proc.stdout
    assert var in proc.stdout
    assert repr(value) in proc.stdout


def test_bad_loop_env_value_fails_hub_creation_clearly():
    proc = _run("import greenweave; greenweave.sleep(0)", GREENWEAVE_LOOP="kqueue")
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr and "GREENWEAVE_LOOP" in proc.stderr


def test_loop_env_selects_backend():
    code = "import greenweave; greenweave.sleep(0.001); print(greenweave.get_hub().loop.backend)"
    proc = _run(code, GREENWEAVE_LOOP="selectors")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("selectors")


def test_settings_are_documented():
    settings = config.settings()
    assert "threadpool_size" in settings
    for name, setting in settings.items():
        assert setting.env == f"GREENWEAVE_{name.upper()}"
        assert setting.__doc__
    assert set(settings) <= set(dir(config))
