"""CITATION.cff: valid Citation File Format 1.2.0, and in step with the package's metadata."""

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The required keys and the types of the keys used, from the CFF 1.2.0 schema (schema.json of
# citation-file-format/citation-file-format): an author is a person (family-names or given-names)
# or an entity (name).
REQUIRED = {"cff-version": str, "message": str, "title": str, "authors": list}
OPTIONAL = {"type": str, "version": str, "abstract": str, "keywords": list, "license": str}
PERSON_OR_ENTITY = {"name", "family-names", "given-names"}


def citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_citation_has_the_schemas_required_keys_with_their_types():
    data = citation()
    for key, kind in REQUIRED.items():
        assert isinstance(data.get(key), kind), key
    assert data["cff-version"] == "1.2.0"
    for key in data:
        assert key in REQUIRED or key in OPTIONAL, f"{key} is not a key this test knows from the schema"
        assert isinstance(data[key], {**REQUIRED, **OPTIONAL}[key]), key
    assert data.get("type", "software") in ("software", "dataset")
    assert data["authors"] and all(isinstance(a, dict) and PERSON_OR_ENTITY & set(a) for a in data["authors"])
    assert all(isinstance(k, str) and k for k in data.get("keywords", []))


def test_citation_version_is_the_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert citation()["version"] == project["version"]


@pytest.mark.skipif(shutil.which("cffconvert") is None, reason="cffconvert is not installed")
def test_cffconvert_validates_the_citation():
    result = subprocess.run(
        ["cffconvert", "--validate", "-i", str(ROOT / "CITATION.cff")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
