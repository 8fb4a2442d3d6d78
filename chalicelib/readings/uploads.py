"""Presigned uploads: a POST form that lets a client put one CSV, of bounded size.

A presigned PUT URL lets its holder write any number of bytes, of any content
type, for 15 minutes. A presigned POST carries a policy S3 checks before it
stores anything: this key and no other, ``Content-Type: text/csv``, and
at most the stage's ``upload_max_bytes``
(``content-length-range``). Ingest checks the size again whatever wrote the
object (:mod:`chalicelib.readings.ingest`): the policy binds only those who use it.

The API (``POST /uploads``) and the operator's ``ops upload`` both use
:func:`presigned_post`, so the two paths are held to one policy.
"""

from __future__ import annotations

from typing import Any

URL_SECONDS = 900
CONTENT_TYPE = "text/csv"


def presigned_post(s3: Any, bucket: str, key: str, max_bytes: int) -> dict[str, Any]:
    """``{"url", "fields"}``: POST ``fields`` then the file (as ``file``) to ``url``, as a form.

    boto3 adds the bucket and the exact key to the policy itself.
    """
    return s3.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": CONTENT_TYPE},
        Conditions=[{"Content-Type": CONTENT_TYPE}, ["content-length-range", 0, max_bytes]],
        ExpiresIn=URL_SECONDS,
    )
