"""eventflow's local cloud: the whole app on one machine, with AWS's event semantics.

``python -m localcloud up`` (what ``make run`` runs) starts moto's server,
provisions the ``local`` stage from the one resource declaration, runs every
event handler through ``localcloud.runtime`` the way Lambda would, and serves
the REST API through Chalice's own local server. :class:`localcloud.cloud.LocalCloud`
does the same in-process, for tests. Nothing here ships to Lambda.

This module imports nothing, so that ``localcloud.runtime`` can be imported on
its own.
"""
