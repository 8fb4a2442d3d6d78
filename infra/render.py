"""``python -m infra render --stage STAGE``: what eventflow adds to Chalice's output, as files.

For one stage, with no AWS call and without running Chalice, it writes:

* ``merge-template.json``: the CloudFormation merge template;
* ``eventflow_resources.tf.json`` and ``eventflow_override.tf.json``: the
  Terraform files;
* ``policy-<function>.json``: each function's IAM policy (ARN templates);
* ``key-policy-<key>.json``: each KMS key's policy, naming the roles
  ``chalice deploy`` creates.

Every file is sorted JSON, so rendering the same stack twice gives the same
bytes. A change to ``infra/`` that should move code and nothing else is
checked by rendering every stage before and after it and comparing the two
directories (``diff -r``); ``docs/architecture.md`` says how.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra import cloudformation, iam, keys, terraform, terraform_functions
from infra.resources import Stack


def documents(stack: Stack) -> dict[str, Any]:
    """Each file's name and its document."""
    rendered: dict[str, Any] = {
        "merge-template.json": cloudformation.merge_template(stack),
        "eventflow_resources.tf.json": terraform.resources(stack),
        "eventflow_override.tf.json": terraform_functions.override(stack),
    }
    for function in stack.functions:
        rendered[f"policy-{function.name}.json"] = iam.policy(stack, function.name)
    for key in stack.keys:
        rendered[f"key-policy-{key.key}.json"] = keys.key_policy(
            stack, key, lambda function: keys.role_template(stack, function)
        )
    return rendered


def render(stack: Stack, out_dir: Path) -> list[Path]:
    """Write every document into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents(stack).items():
        path = out_dir / name
        path.write_text(cloudformation.dumps(document))
        written.append(path)
    return written
