"""moto's server (the local stack's and the tests' AWS), with one cost of moto 5.2.5 taken out.

moto projects every item a Query or Scan returns — through the index's projection (the table's
indexes are INCLUDE) and again through the request's ProjectionExpression — by turning the whole
item into plain JSON once per projected attribute, and building the result through a dict that
re-adds up the size of every attribute at each insert. Profiled in-process: about 1.3 ms of CPU
per item for the index projection alone, most of a page's time. A fan-out to 10,000 clients
through ws-local spent some 10 s of its ~15 s there, and the 1,000-client fan-out that took
250 ms on ALL-projected indexes took 990 ms once they were INCLUDE (docs/local-stack.md).

A projection onto top-level string and number attributes (every index projection of this table,
and every ProjectionExpression of ours) is the same as copying those attributes; this does that,
and leaves any other projection (nested paths, list items, other types: moto's JSON round trip
turns a binary into bytes, say) to moto. Before serving, it checks on a sample
item that both give the same item, and serves unpatched, saying so, if they do not (a moto whose
internals moved).

    python3 scripts/moto_server.py -H 127.0.0.1 -p 5000    (the arguments of moto_server)
"""

import copy
import sys

from moto.dynamodb.models import dynamo_type
from moto.server import main as moto_main

Item = dynamo_type.Item
LimitedSizeDict = dynamo_type.LimitedSizeDict
moto_project = Item.project


def top_level_names(projection_expressions):
    """The attribute names when every expression is one top-level name, else None."""
    names = []
    for path in projection_expressions:
        if len(path) != 1 or "[" in path[0]:
            return None
        names.append(path[0])
    return names


# The type whose values moto's JSON round trip gives back as they were (numbers it normalises:
# "1e3" comes back "1E+3").
PLAIN = {"S"}


def project(self, projection_expressions):
    """moto's Item.project: a new Item with only the named attributes; a copy of them when they
    are top-level strings and numbers."""
    names = top_level_names(projection_expressions)
    if names is None or any(name in self.attrs and self.attrs[name].type not in PLAIN for name in names):
        return moto_project(self, projection_expressions)
    result = Item.__new__(Item)
    result.hash_key = self.hash_key
    result.range_key = self.range_key
    # The item passed moto's size check when it was written; a part of it cannot exceed it.
    attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.__init__(attrs)
    for name in names:
        if name in self.attrs and name not in attrs:
            dict.__setitem__(attrs, name, copy.deepcopy(self.attrs[name]))
    result.attrs = attrs
    return result


SAMPLE = {
    "pk": {"S": "CONN#abc="},
    "sk": {"S": "META"},
    "gsi1pk": {"S": "CONV#c1"},
    "gsi1sk": {"S": "CONN#abc="},
    "connectionId": {"S": "abc="},
    "status": {"S": "CONNECTED"},
    "ttl": {"N": "1900000000"},
    "tokenExp": {"N": "1.50"},
    "tags": {"SS": ["b", "a"]},
    "nested": {"M": {"a": {"L": [{"S": "x"}, {"N": "2"}]}, "b": {"BOOL": True}, "c": {"NULL": True}}},
    "blob": {"B": "AAEC"},
}


def agrees(item_json=None, projections=None):
    """True when this projection and moto's give the same item on a sample (or the given one)."""
    item_json = item_json or SAMPLE
    item = Item(
        hash_key=dynamo_type.DynamoType(item_json["pk"]),
        range_key=dynamo_type.DynamoType(item_json["sk"]),
        attrs=item_json,
    )
    projections = projections or [
        [["connectionId"], ["status"], ["gsi1pk"], ["pk"], ["missing"]],
        [["ttl"], ["tokenExp"], ["sk"], ["ttl"]],
        [["ttl"], ["tokenExp"], ["tags"], ["nested"], ["blob"]],
        [["nested", "a"], ["connectionId"]],
        [],
    ]
    for expressions in projections:
        ours, theirs = outcome(project, item, expressions), outcome(moto_project, item, expressions)
        if ours != theirs:
            return False
    return True


def outcome(projection, item, expressions):
    """The item a projection gives, as JSON, or the type of the error it raises."""
    try:
        return projection(item, expressions).to_json()
    except Exception as err:  # noqa: BLE001 - moto's own errors are part of its behaviour
        return type(err)


def install():
    """Puts the projection in place when it agrees with moto's; returns whether it did."""
    if not agrees():
        return False
    Item.project = project
    return True


if __name__ == "__main__":
    if install():
        print("moto_server.py: top-level projections copy attributes (moto's result, less CPU)", file=sys.stderr)
    else:
        print("moto_server.py: WARNING: the projection does not agree with this moto's; serving moto unpatched", file=sys.stderr)
    sys.argv[0] = "moto_server"
    sys.exit(moto_main())
