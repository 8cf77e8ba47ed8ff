"""Browser tests: the login pages driven in headless Chromium (Playwright).

A package on purpose: without ``__init__.py`` this directory's ``conftest.py``
would be imported as the module ``conftest`` and shadow ``tests/conftest.py``,
which the other test modules import (``from conftest import PASSWORD``).
"""
