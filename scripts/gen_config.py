"""Regenerates what comes from the configuration key table
(python/db_pool/_config_keys.py): python/db_pool/config.schema.json and the
keys table of docs/configuration.md. tests/python/test_config_generated.py
fails when either differs from what this writes.

    .venv/bin/python scripts/gen_config.py
"""

from __future__ import annotations

from pathlib import Path

from db_pool import _config_export

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "python" / "db_pool" / "config.schema.json"
DOCS = ROOT / "docs" / "configuration.md"


def main() -> None:
    SCHEMA.write_text(_config_export.schema_text(), encoding="utf-8")
    DOCS.write_text(_config_export.docs_with_table(DOCS.read_text(encoding="utf-8")),
                    encoding="utf-8")
    print(f"wrote {SCHEMA.relative_to(ROOT)} and the table of {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
