"""The GUI tests: every test here is marked ``gui`` and gets the Qt isolation of tests/conftest.py."""
