"""eventflow's operator CLI, ``python -m ops``.

Every command works against whatever endpoint boto3 is configured for: the
local cloud through ``AWS_ENDPOINT_URL``, or a real account through the usual
AWS configuration. Resource names come from the stage's declaration.
"""
