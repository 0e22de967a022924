"""Facade tests: the shared contract suite (contract.py) and the facades' own unit tests."""

import pytest

# contract.py is imported by test modules here and in tests/integration: rewrite its asserts.
pytest.register_assert_rewrite("tests.facades.contract")
