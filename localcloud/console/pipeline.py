"""The pipeline map, derived from the declaration rather than drawn by hand.

Nodes are the declared buckets, queues (each with its DLQ), topics, tables,
functions, on-failure queues and the mail sender; edges are what connects
them: bucket notifications, event-source mappings, subscriptions, on-failure
destinations, and what each function's own code writes (its grants,
declared with it in ``infra/stack/``). A consumer added to a domain's stack
file appears on the map with no change here.

Each node gets a column (its depth from the entry points) and a row, so the
browser only draws boxes where it is told.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from infra.grants import IdentityAccess, QueueAccess, TableAccess, TopicAccess
from infra.resources import Stack

API = "api"
MAIL = "ses"
# Actions that move data into the resource they name (reads are not drawn).
WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "SendMessage",
    "Publish",
    "SendEmail",
    "PutObject",
}


@dataclass
class Node:
    id: str
    kind: str  # api, bucket, queue, dlq, topic, table, function, stream, mail
    label: str
    column: int = 0
    row: int = 0
    # A queue's dead-letter queue is drawn inside the queue's box, not as a box of its own.
    dlq: str | None = None


def _writes(actions: str) -> bool:
    return bool(WRITES & set(actions.split()))


def build(stack: Stack) -> dict[str, Any]:
    """The map as JSON-ready data: nodes with positions, and edges between their ids."""
    nodes: dict[str, Node] = {API: Node(API, "api", "REST API")}
    edges: list[tuple[str, str]] = []

    def add(node_id: str, kind: str, label: str) -> str:
        nodes.setdefault(node_id, Node(node_id, kind, label))
        return node_id

    for bucket in stack.buckets:
        source = add(f"bucket:{bucket.key}", "bucket", bucket.key)
        for notification in bucket.queue_notifications:
            edges.append((source, f"queue:{notification.queue_key}"))
    for queue in stack.queues:
        add(f"queue:{queue.key}", "queue", queue.key)
        nodes[f"queue:{queue.key}"].dlq = queue.dlq_key
    for failures in stack.failure_queues:
        add(f"queue:{failures.key}", "dlq", failures.key)
    for topic in stack.topics:
        if any(s.topic_key == topic.key for s in stack.subscriptions):
            add(f"topic:{topic.key}", "topic", topic.key)
    for subscription in stack.subscriptions:
        edges.append((f"topic:{subscription.topic_key}", f"queue:{subscription.queue_key}"))
    for table in stack.tables:
        add(f"table:{table.key}", "table", table.key)
        if table.stream_view_type:
            stream = add(f"stream:{table.key}", "stream", f"{table.key} stream")
            edges.append((f"table:{table.key}", stream))
    for function in stack.functions:
        add(f"function:{function.name}", "function", function.name)
    edges.append((API, "function:api_handler"))
    for source in stack.event_sources:
        origin = f"queue:{source.source_key}"
        if origin not in nodes:
            origin = f"stream:{source.source_key}"
        edges.append((origin, f"function:{source.function}"))
        if source.on_failure_queue_key:
            edges.append((f"function:{source.function}", f"queue:{source.on_failure_queue_key}"))
    for function in stack.functions:
        for grant in function.grants:
            target = _grant_target(grant, nodes)
            if target and _writes(grant.actions):
                edges.append((f"function:{function.name}", target))
    edges = [e for e in dict.fromkeys(edges) if e[0] in nodes and e[1] in nodes]
    _place(nodes, edges)
    return {
        "nodes": [asdict(n) for n in sorted(nodes.values(), key=lambda n: (n.column, n.row))],
        "edges": [{"from": a, "to": b} for a, b in edges],
    }


def _grant_target(grant: Any, nodes: dict[str, Node]) -> str | None:
    if isinstance(grant, TableAccess):
        return f"table:{grant.table_key}"
    if isinstance(grant, QueueAccess):
        # A handler's own sends to a DLQ (poison messages) are drawn by the redrive edge.
        return None if grant.dlq else f"queue:{grant.queue_key}"
    if isinstance(grant, TopicAccess):
        return f"topic:{grant.topic_key}"
    if isinstance(grant, IdentityAccess):
        nodes.setdefault(MAIL, Node(MAIL, "mail", "SES mail"))
        return MAIL
    # Object writes (presigned uploads, rejects reports) are not drawn: the upload
    # is the client's, and the report is a side output, not a step of the flow.
    return None


def _place(nodes: dict[str, Node], edges: list[tuple[str, str]]) -> None:
    """Columns by longest path from a node with no inputs; rows in order of appearance.

    Edges that would close a cycle (a function writing back to a table it was
    fed from) are ignored for placement only.
    """
    outgoing: dict[str, list[str]] = defaultdict(list)
    incoming: dict[str, int] = defaultdict(int)
    for a, b in edges:
        outgoing[a].append(b)
        incoming[b] += 1
    depth: dict[str, int] = {}

    def visit(node: str, level: int, path: frozenset[str]) -> None:
        if depth.get(node, -1) >= level:
            return
        depth[node] = level
        for nxt in outgoing[node]:
            if nxt not in path:
                visit(nxt, level + 1, path | {nxt})

    for node_id in nodes:
        if incoming[node_id] == 0:
            visit(node_id, 0, frozenset({node_id}))
    columns: dict[int, list[str]] = defaultdict(list)
    for node_id, node in nodes.items():
        node.column = depth.get(node_id, 0)
        columns[node.column].append(node_id)
    predecessors: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        predecessors[b].append(a)
    # Left to right, each node sits near the rows of what feeds it (a barycentre
    # pass), which keeps the two flows in bands instead of interleaving them.
    for column in sorted(columns):
        members = columns[column]

        def centre(node_id: str, members: list[str] = members, column: int = column) -> float:
            fed = [nodes[p].row for p in predecessors[node_id] if nodes[p].column < column]
            return sum(fed) / len(fed) if fed else float(members.index(node_id))

        for row, node_id in enumerate(sorted(members, key=centre)):
            nodes[node_id].row = row
