"""Test-suite set-up: the shared helper modules get pytest's assertion rewriting, since the
test modules import them before pytest would load them as plugins."""

import pytest

pytest.register_assert_rewrite("plugin_helpers", "trainer_support")
