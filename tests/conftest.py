"""Shared fixtures for greenweave's tests (kept deliberately small)."""

from __future__ import annotations

import pytest

from greenweave._core.hub import get_hub, get_hub_if_exists


@pytest.fixture
def fresh_hub():
    """A brand-new hub for the current thread, with nothing left over from
    earlier tests (so "the loop ran dry" really means *this* test's work);
    destroyed, loop included, afterwards."""
    old = get_hub_if_exists()
    if old is not None:
        old.destroy(destroy_loop=True)
    hub = get_hub()
    yield hub
    if get_hub_if_exists() is hub:
        hub.destroy(destroy_loop=True)
