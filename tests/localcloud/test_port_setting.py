"""The local cloud's ports from the environment: EVENTFLOW_AWS_PORT, _API_PORT, _CONSOLE_PORT."""

from __future__ import annotations

import pytest

from localcloud.console.cli import console_port
from localcloud.env import port_setting


def test_a_port_defaults_and_zero_picks_a_free_one():
    assert port_setting({}, "EVENTFLOW_API_PORT", 8000) == 8000
    assert port_setting({"EVENTFLOW_API_PORT": "0"}, "EVENTFLOW_API_PORT", 8000) == 0
    assert console_port({}) == 8080
    assert console_port({"EVENTFLOW_CONSOLE_PORT": "9090"}) == 9090


@pytest.mark.parametrize("value", ["http", "80.5", "-1", "65536"])
def test_anything_but_a_port_number_ends_the_command_naming_the_variable(value):
    with pytest.raises(SystemExit, match=f"EVENTFLOW_CONSOLE_PORT='{value}' is not a port number"):
        console_port({"EVENTFLOW_CONSOLE_PORT": value})
