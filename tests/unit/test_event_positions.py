"""Event positions: one server's `<horizon>:<ids>` unchanged, a cluster's one per node, and what
is not a position refused."""

from __future__ import annotations

import re

import pytest

from optiinfra_store.api.sse import EVENT_ID
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.workflow_events import (
    MAX_POSITION_NODES,
    MAX_POSITION_RANGES,
    format_position,
    parse_position,
    parse_positions,
)


def test_parse_positions__one_servers_position_is_read_as_before():
    text = format_position(7421, {1200, 1201, 1202, 1203, 1207})
    assert text == "7421:1200-1203,1207"
    assert parse_positions(text) == {None: parse_position(text)} == {None: (7421, {1200, 1201, 1202, 1203, 1207})}


def test_parse_positions__a_clusters_position_by_node():
    first = 2**48 + 1
    text = f"1.962:{first}-{first + 2};2.963:"
    assert parse_positions(text) == {1: (962, {first, first + 1, first + 2}), 2: (963, set())}
    assert re.match(EVENT_ID, f"{first}@{text}")


@pytest.mark.parametrize(
    "text",
    [
        "1.962:;1.963:",  # a node named twice
        "1.962:;",  # an empty node
        "1.962",  # no ids part
        ".962:",  # no group
        "99999999999.1:",  # a group beyond int4
        "1.962:5-3",  # a range reversed
        "1:2.3:",  # not one server's, not a node's
        "1.2:3;x",
    ],
)
def test_parse_positions__what_is_not_a_position_is_refused(text):
    with pytest.raises(InvalidArgument, match="not an event position"):
        parse_positions(text)


def test_parse_positions__too_many_ranges_over_all_nodes_are_refused():
    half = ",".join(str(i) for i in range(0, MAX_POSITION_RANGES, 2))  # MAX / 2 ranges each
    assert len(parse_positions(f"1.5:{half};2.5:{half}")) == 2
    with pytest.raises(InvalidArgument):
        parse_positions(f"1.5:{half};2.5:{half},99999;3.5:7")


def test_parse_positions__too_many_nodes_are_refused_before_any_is_read():
    nodes = ";".join(f"{group}.5:" for group in range(1, MAX_POSITION_NODES + 1))
    assert len(parse_positions(nodes)) == MAX_POSITION_NODES
    with pytest.raises(InvalidArgument, match="more than 1,000 nodes"):
        parse_positions(f"{nodes};{MAX_POSITION_NODES + 1}.5:")
