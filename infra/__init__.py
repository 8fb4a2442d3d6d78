"""eventflow's resources, declared once as data, and the code that provisions and renders them.

This package never ships to Lambda. ``stack`` declares a stage's resources,
one file per domain, in the model of ``resources`` and ``functions``;
``provision`` turns a stack into idempotent boto3 calls against whatever
endpoint boto3 is configured for, and ``cloudformation`` and ``terraform``
render it for ``chalice package``.
"""
