"""What is generated from the configuration key table cannot drift: the
shipped JSON Schema and the keys table of docs/configuration.md equal what
scripts/gen_config.py makes now, and the schema accepts the documented
examples and refuses broken files."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from db_pool import _config_export, _config_keys

ROOT = Path(__file__).resolve().parents[2]
FIX = "run: .venv/bin/python scripts/gen_config.py"


def test_schema_is_generated() -> None:
    shipped = resources.files("db_pool").joinpath("config.schema.json").read_text("utf-8")
    assert shipped == _config_export.schema_text(), FIX


def test_docs_table_is_generated() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    assert text == _config_export.docs_with_table(text), FIX


def test_docs_name_every_key() -> None:
    table = _config_export.docs_table()
    keys = [*_config_keys.POOL_KEYS, *_config_keys.SOURCE_KEYS,
            *(k for keys in _config_keys.ENGINE_KEYS.values() for k in keys),
            *_config_keys.TLS_KEYS]
    for key in keys:
        assert f"| `{key.name}`" in table


def _toml_examples() -> list[str]:
    text = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    return re.findall(r"```toml\n(.*?)```", text, re.S)


def test_schema_accepts_the_docs_examples_and_refuses_broken_files() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    tomllib = pytest.importorskip("tomllib")
    schema = json.loads(_config_export.schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = _toml_examples()
    assert examples
    for example in examples:
        errors = list(validator.iter_errors(tomllib.loads(example)))
        assert not errors, [e.message for e in errors]
    broken = [
        {"pools": {"p": {"url": "sqlite:///x.db", "max_szie": 3}}},
        {"pools": {"p": {"url": "sqlite:///x.db", "max_size": 0}}},
        {"pools": {"p": {"url": "sqlite:///x.db", "sslmode": "require"}}},  # not sqlite's
        {"pools": {"p": {"engine": "postgresql", "journal_mode": "wal"}}},
        {"pools": {"p": {"engine": "postgresql", "endpoints": [{"host": "a", "port": 70000}]}}},
        {"pools": {"p": {"url": "sqlite:///x.db", "read_from": "replica"}}},
        {"pool": {}},
    ]
    for config in broken:
        assert list(validator.iter_errors(config)), config
    assert not list(validator.iter_errors({"pools": {"p": {"url": "sqlite:///x.db",
                                                            "max_size": "${MAX}"}}}))
