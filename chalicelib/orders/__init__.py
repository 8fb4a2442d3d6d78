"""The orders workflow: products, orders and their status machine, partner
intake, and the domain events that the orders table's stream turns into.

See ``docs/orders.md`` for the state machine and the events, and
``docs/architecture.md`` for how the parts fit together.
"""
