"""Patches to moto 5.2.5's server that let ``chalice deploy`` run against it.

Each patch works around a moto gap, not an eventflow behaviour; AWS itself
accepts what Chalice sends. They apply to the in-process ``ThreadedMotoServer``
that the deploy test starts, and are undone when the test ends.

* S3 ``PutBucketNotificationConfiguration``: Chalice sends filter-rule names
  ``Prefix``/``Suffix``; AWS matches them case-insensitively, moto asserts
  lower case (an AssertionError, answered as HTTP 500).
* API Gateway ``ImportRestApi``/``PutRestApi``: Chalice sends Swagger 2.0;
  moto accepts only OpenAPI 3 and requires ``info.description``. The paths
  have the same shape in both, which is all moto reads.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from moto.apigateway.models import APIGatewayBackend
from moto.s3.responses import S3Response

_RULE_NAME = re.compile(rb"<Name>(Prefix|Suffix)</Name>")


def _as_openapi3(api_doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(api_doc)
    doc.pop("swagger", None)
    doc["openapi"] = "3.0.1"
    doc["info"] = {"description": "", **doc.get("info", {})}
    return doc


@pytest.fixture
def moto_gaps(monkeypatch):
    notification = S3Response._notification_config_from_body
    import_api = APIGatewayBackend.import_rest_api
    put_api = APIGatewayBackend.put_rest_api

    def lower_rule_names(self):
        body = self.body if isinstance(self.body, bytes) else self.body.encode()
        self.body = _RULE_NAME.sub(lambda m: b"<Name>" + m.group(1).lower() + b"</Name>", body)
        return notification(self)

    def import_rest_api(self, api_doc, fail_on_warnings):
        return import_api(self, _as_openapi3(api_doc), False)

    def put_rest_api(self, function_id, api_doc, fail_on_warnings, mode="merge"):
        return put_api(self, function_id, _as_openapi3(api_doc), False, mode)

    monkeypatch.setattr(S3Response, "_notification_config_from_body", lower_rule_names)
    monkeypatch.setattr(APIGatewayBackend, "import_rest_api", import_rest_api)
    monkeypatch.setattr(APIGatewayBackend, "put_rest_api", put_rest_api)
