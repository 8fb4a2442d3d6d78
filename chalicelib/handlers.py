"""Being written: event handlers."""


def ingest_from_queue(event, context, services):
    raise NotImplementedError


def ingest_from_s3(event, context, services):
    raise NotImplementedError


def write_readings(event, context, services):
    raise NotImplementedError
