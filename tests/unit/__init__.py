"""Tests of pure code (rules, hashing, catalogues, form specs, the stand-in): no bot, no database.

`bash scripts/test.sh tests/unit` is the everyday loop."""
