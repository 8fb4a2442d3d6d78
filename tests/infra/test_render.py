"""``python -m infra render``: the files a refactor of infra/ is compared by.

They must be exactly what packaging and deploying use (the merge template,
the Terraform files, each function's policy), and the same bytes every time
the same stack is rendered, or a before-and-after ``diff -r`` would report
noise instead of changes.
"""

from __future__ import annotations

import json

import pytest

from infra import cloudformation, iam, terraform, terraform_functions
from infra.__main__ import main
from infra.render import render
from tests.infra.conftest import stack_for


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_render_writes_what_packaging_uses_the_same_bytes_each_time(tmp_path, stage):
    stack = stack_for(stage)
    first = {p.name: p.read_bytes() for p in render(stack, tmp_path / "first")}
    second = {p.name: p.read_bytes() for p in render(stack_for(stage), tmp_path / "second")}

    assert first == second
    assert json.loads(first["merge-template.json"]) == cloudformation.merge_template(stack)
    assert json.loads(first["eventflow_resources.tf.json"]) == terraform.resources(stack)
    assert json.loads(first["eventflow_override.tf.json"]) == terraform_functions.override(stack)
    for function in stack.functions:
        policy = json.loads(first[f"policy-{function.name}.json"])
        assert policy == iam.policy(stack, function.name)
    assert {f"key-policy-{k.key}.json" for k in stack.keys} <= set(first)


def test_python_m_infra_render_lists_what_it_wrote(tmp_path, capsys):
    code = main(["render", "--stage", "local", "--out", str(tmp_path)])

    assert code == 0
    written = json.loads(capsys.readouterr().out)["written"]
    assert sorted(written) == sorted(str(p) for p in tmp_path.iterdir())
    assert str(tmp_path / "policy-update_inventory.json") in written
