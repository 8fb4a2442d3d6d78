"""The readings workflow: CSV uploads to S3, parsed into chunks on a queue,
written to DynamoDB exactly once, each upload tracked as an ingest job.

See ``docs/architecture.md`` for how the parts fit together.
"""
