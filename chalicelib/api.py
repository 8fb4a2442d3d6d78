"""Being written: REST operations."""

import json

JSON_HEADERS = {"Content-Type": "application/json"}


def to_json(body):
    return json.dumps(body, default=str)


def framework_error(status, message):
    return {"error": "x", "message": message, "details": []}


def health(*args):
    raise NotImplementedError


def create_upload(*args):
    raise NotImplementedError


def create_reading(*args):
    raise NotImplementedError


def list_readings_by_date(*args):
    raise NotImplementedError


def list_location_readings(*args):
    raise NotImplementedError


def get_reading(*args):
    raise NotImplementedError


def replace_reading(*args):
    raise NotImplementedError


def delete_reading(*args):
    raise NotImplementedError


def list_ingests(*args):
    raise NotImplementedError


def get_ingest(*args):
    raise NotImplementedError
