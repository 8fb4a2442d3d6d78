"""The local cloud's event-source runtime: Lambda's event-source mappings, in-process.

Usage::

    rt = EventSourceRuntime(app, stage_config, stack, outputs, clients)
    rt.start()
    rt.wait_until_idle(timeout=30.0)
    rt.stats()
    rt.stop()
"""

from localcloud.runtime.runtime import EventSourceRuntime

__all__ = ["EventSourceRuntime"]
