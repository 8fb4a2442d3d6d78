"""The deployed stages run on arm64 (Graviton), so the package must hold arm64 code only.

``lambda_architecture: arm64`` (``.chalice/config.json``) makes Chalice set
``Architectures`` and download each dependency's manylinux *aarch64* wheel;
a native module built for x86_64 would import-fail on every cold start. So
this packages ``prod`` with the real requirements and reads every ELF file
in the zip. The first run on a machine downloads the wheels (pip, through
Chalice); they are cached in the project's ``.chalice/deployments/`` (ignored
by git), as ``chalice package`` caches them for a deploy.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from infra import cloudformation_ids
from infra.package import package
from infra.stack import declare
from infra.stageconfig import PROJECT_DIR, StageConfig
from tests.infra.conftest import project_copy, stack_for

ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183  # e_machine of an ELF built for arm64


@pytest.fixture(scope="session")
def prod_package(tmp_path_factory) -> Path:
    project = project_copy(tmp_path_factory.mktemp("arm64") / "project")
    shutil.copy2(PROJECT_DIR / "requirements.txt", project / "requirements.txt")
    cache = PROJECT_DIR / ".chalice" / "deployments"
    cache.mkdir(parents=True, exist_ok=True)
    (project / ".chalice" / "deployments").symlink_to(cache, target_is_directory=True)
    out = project.parent / "out"
    config = StageConfig.load("prod")
    package(config, declare(config), project, out, "cloudformation")
    return out


def elf_machines(archive: zipfile.ZipFile) -> dict[str, int]:
    machines = {}
    for name in archive.namelist():
        head = archive.read(name)[:20] if ".so" in name else b""
        if head.startswith(ELF_MAGIC):
            machines[name] = struct.unpack("<H", head[18:20])[0]
    return machines


def test_every_native_module_in_the_package_is_built_for_arm64(prod_package):
    with zipfile.ZipFile(prod_package / "deployment.zip") as archive:
        machines = elf_machines(archive)
        native_wheels = {
            name: archive.read(name).decode()
            for name in archive.namelist()
            if name.endswith(".dist-info/WHEEL")
            and "Root-Is-Purelib: false" in archive.read(name).decode()
        }
    assert any(name.startswith("pydantic_core/") for name in machines), sorted(machines)
    assert {name: m for name, m in machines.items() if m != EM_AARCH64} == {}
    for name, wheel in native_wheels.items():
        tags = [line for line in wheel.splitlines() if line.startswith("Tag:")]
        assert tags and all(tag.endswith("_aarch64") for tag in tags), (name, tags)


def test_every_function_runs_on_arm64(prod_package):
    sam = json.loads((prod_package / "sam.json").read_text())
    for function in stack_for("prod").functions:
        properties = sam["Resources"][cloudformation_ids.function_id(function.name)]["Properties"]
        assert properties["Architectures"] == ["arm64"], function.name
