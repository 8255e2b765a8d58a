"""Fixtures of the hostile-input tests: the session's :class:`~tests.hostile.inputs.Kit` and a work folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.inputs import Kit, build_kit


@pytest.fixture(scope="session")
def kit(quick_demo, tmp_path_factory) -> Kit:
    """Every hostile input, built once; the demo's files are read, never changed."""
    return build_kit(quick_demo.files, tmp_path_factory.mktemp("hostile_inputs"))


@pytest.fixture
def work(tmp_path) -> Path:
    """The empty folder a case runs in: its outputs, and nothing else, land here."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder
