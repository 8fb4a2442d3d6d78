"""eventflow's domain code: everything that ships to Lambda besides app.py.

Nothing in this package imports ``chalice``; handlers in ``app.py`` translate
Chalice events into plain dicts and call in here.
"""
