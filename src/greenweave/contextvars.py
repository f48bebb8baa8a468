"""Context variables for greenlets (gevent's ``gevent.contextvars``).

greenlet (>= 1.0) gives every greenlet its own ``contextvars`` context
natively, so the standard library's implementation is already cooperative:
this module simply re-exports it for code written against gevent.

What ``spawn`` copies: a :class:`greenweave.Greenlet` runs in a *copy* of the
context of the greenlet that created it (like an ``asyncio`` task).  Values
set before ``spawn`` are visible inside the new greenlet; values it sets stay
inside it and never leak back to the spawner or to sibling greenlets.
"""

from contextvars import Context, ContextVar, Token, copy_context

__all__ = ["ContextVar", "Context", "copy_context", "Token"]
