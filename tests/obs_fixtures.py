"""pytest fixtures around one real, headless OBS Studio per test session (tests/obs_harness.py).

A spec module opts in with ``pytest_plugins = ["tests.obs_fixtures"]`` (or
``from tests.obs_fixtures import obs, real_obs  # noqa: F401``, then ``# noqa: F811`` on each spec
that names ``obs``) and asks for ``obs``: the session's OBS, brought back to the starting studio
before the spec ("Intro" on program, stream and recording stopped, exactly the harness's scenes and
sources, restarted first if a previous spec killed it). OBS starts only in a session that runs such a
spec, and is stopped at the end of the session whatever the specs did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.obs_harness import RealOBS

# pytest makes a separate session fixture for each module that imports `real_obs` (and one more for
# the plugin): they all share this one OBS, stopped when the last of them is torn down.
_studio: RealOBS | None = None
_holders = 0


@pytest.fixture(scope="session")
def real_obs() -> Iterator[RealOBS]:
    global _studio, _holders
    if _studio is None:
        studio = RealOBS()
        studio.start()
        _studio = studio
    _holders += 1
    try:
        yield _studio
    finally:
        _holders -= 1
        if _holders == 0:
            _studio.stop()
            _studio = None


@pytest.fixture
def obs(real_obs: RealOBS) -> RealOBS:
    real_obs.reset()
    return real_obs
