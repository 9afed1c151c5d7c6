"""The suite's ``xdist_group`` marks take effect under ``make test``'s ``--dist loadgroup``.

The benchmark smoke modules share one run of their benchmark per module and must not run
on two workers at once; pytest-xdist keeps a group on one worker by suffixing its tests'
node ids with ``@group``. When a pytest release stops honouring that (pytest 9.2 did,
pytest-xdist#1386), grouping silently stops; this test says so instead.
"""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("grouping-check")
def test_a_grouped_test_carries_its_group_under_loadgroup(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@grouping-check"), request.node.nodeid
