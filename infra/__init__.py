"""eventflow's resources, declared once, and the code that provisions them.

This package never ships to Lambda. ``declaration`` describes every table,
queue, bucket and event-source setting as data; ``provision`` turns that into
idempotent boto3 calls against whatever endpoint boto3 is configured for.
"""
