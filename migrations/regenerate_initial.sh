#!/usr/bin/env bash
# Development aid while the schema has never shipped: rebuild 0001 from the models.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/0001_initial_schema.py
CENTRALITA_DATABASE_URL="sqlite+aiosqlite:///$tmp/gen.db" .venv/bin/alembic revision --autogenerate -m "initial schema" --rev-id 0001_initial >/dev/null
f=$(ls migrations/versions/*0001_initial*.py)
sed -i 's/astext_type=Text()/astext_type=sa.Text()/g' "$f"
mv "$f" migrations/versions/0001_initial_schema.py
rm -rf "$tmp"
echo "regenerated migrations/versions/0001_initial_schema.py"
