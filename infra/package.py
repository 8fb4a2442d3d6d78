"""``python -m infra package``: Chalice's output plus what the declaration adds.

CloudFormation: the merge template (:mod:`infra.cloudformation`) is written to
``OUT/merge-template.json`` and passed to ``chalice package --merge-template``;
the result is ``OUT/sam.json`` and ``OUT/deployment.zip``.

Terraform: ``chalice package --pkg-format terraform`` writes
``OUT/chalice.tf.json``; :mod:`infra.terraform` adds
``OUT/eventflow_resources.tf.json`` and ``OUT/eventflow_override.tf.json``
(Chalice does not clear its output directory, so they survive re-runs).

``project_dir`` is a parameter so the tests can package a copy of the project
with an empty requirements file, which needs no network and no wheel cache.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra import cloudformation, cloudformation_functions, iam, terraform, terraform_functions
from infra.chalicecli import run, write_policy_files
from infra.resources import Stack
from infra.stageconfig import StageConfig

FORMATS = ("cloudformation", "terraform")


class PackageError(RuntimeError):
    pass


def package(
    config: StageConfig, stack: Stack, project_dir: Path, out_dir: Path, fmt: str
) -> list[Path]:
    """Package the stage; returns the files written."""
    config.require_deployable()
    if fmt == "cloudformation":
        return package_cloudformation(config, stack, project_dir, out_dir)
    if fmt == "terraform":
        return package_terraform(config, stack, project_dir, out_dir)
    raise PackageError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def package_cloudformation(
    config: StageConfig, stack: Stack, project_dir: Path, out_dir: Path
) -> list[Path]:
    if stack.settings.ingest_trigger == "s3":
        # Chalice raises NotImplementedError for on_s3_event in CloudFormation.
        raise PackageError(
            f"stage {stack.stage} uses ingest trigger 's3' (on_s3_event), which "
            "`chalice package` cannot render as CloudFormation; package a stage with "
            "EVENTFLOW_INGEST_TRIGGER=sqs, or use --format terraform"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir / "merge-template.json"
    merge_path.write_text(cloudformation.dumps(cloudformation.merge_template(stack)))
    # The merge replaces each role's policy anyway; the files hold the same
    # document so that Chalice's own output is already least-privilege.
    write_policy_files(
        project_dir,
        config,
        stack,
        lambda f: cloudformation_functions.cfn_policy(iam.policy(stack, f)),
    )
    run(
        ["package", "--stage", stack.stage, "--merge-template", str(merge_path), str(out_dir)],
        project_dir,
        capture=True,
    )
    sam_path = out_dir / "sam.json"
    cloudformation_functions.check_merged(json.loads(sam_path.read_text()), stack)
    return [sam_path, out_dir / "deployment.zip", merge_path]


def package_terraform(
    config: StageConfig, stack: Stack, project_dir: Path, out_dir: Path
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Chalice copies the file into aws_iam_role_policy; the override replaces
    # it with the interpolated document, so only its shape matters here.
    write_policy_files(project_dir, config, stack, lambda f: iam.policy(stack, f))
    run(
        ["package", "--pkg-format", "terraform", "--stage", stack.stage, str(out_dir)],
        project_dir,
        capture=True,
    )
    written = []
    for filename, document in (
        ("eventflow_resources.tf.json", terraform.resources(stack)),
        ("eventflow_override.tf.json", terraform_functions.override(stack)),
    ):
        path = out_dir / filename
        path.write_text(cloudformation.dumps(document))
        written.append(path)
    return [out_dir / "chalice.tf.json", *written]
