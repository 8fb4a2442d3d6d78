"""The local cloud's web console: the pipeline drawn live, with its queues, jobs,
orders, mail and metrics, served on 127.0.0.1 beside the API.

It reads only what any client could (AWS APIs on the local endpoint and the
app's own REST API) and changes state only through the code paths the ``ops``
CLI and the API already use. See ``docs/local-cloud.md#the-web-console``.
"""
