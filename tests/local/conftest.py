"""One emulator per test module, emptied before each test, so tests share no state.

Stopping moto's server takes half a second (its poll interval), so a module reuses one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.emulator import Emulator


@pytest.fixture(scope="module")
def module_cloud() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def cloud(module_cloud: Emulator) -> Emulator:
    module_cloud.reset()
    return module_cloud
