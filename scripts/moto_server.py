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

And moto's TransactWriteItems: it deep-copies every table a transaction touches before it runs
(to put the copy back if a condition fails), so each transaction costs the whole table; and a
copy put back erases whatever another request thread wrote in between. Stream appends are
transactions, and concurrent appends to one stream cancel each other by design: a conversation
posted to at 20/s through ws-local had moto so busy copying that the functions' reads timed out.
The launcher makes the backend's writes one at a time (a lock), and runs a transaction as
DynamoDB does: every condition checked first, then every write, so a cancelled one writes
nothing and copies nothing (only the items a write touches are kept, to undo a write that fails).

    python3 scripts/moto_server.py -H 127.0.0.1 -p 5000    (the arguments of moto_server)
"""

import copy
import functools
import sys
import threading

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


# Every write of the DynamoDB backend holds it (reentrant: a batch or transaction calls the others).
WRITES = threading.RLock()
WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def serialize_writes():
    """Wraps each write of moto's DynamoDB backend in WRITES (once)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITE_METHODS:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "serialized", False):
            continue

        @functools.wraps(method)
        def locked(self, *args, _method=method, **kwargs):
            with WRITES:
                return _method(self, *args, **kwargs)

        locked.serialized = True
        setattr(DynamoDBBackend, name, locked)


def transact_write_items(self, transact_items):
    """moto's TransactWriteItems with its errors and answers, checked before written: the
    conditions of every item against the current items, then (none failed) the writes, under
    the write lock. A write that fails midway puts back the items written before it."""
    from moto.dynamodb import exceptions as errors
    from moto.dynamodb.comparisons import get_filter_expression

    with WRITES:
        if len(transact_items) > 100:
            raise errors.TooManyTransactionsException()
        seen, ops, outcome = set(), [], []
        for item in transact_items:
            if len(item) > 1:
                raise errors.TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            unique = (op["TableName"], str(dict(sorted(key.items()))))
            if unique in seen:
                raise errors.MultipleTransactionsException()
            seen.add(unique)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current):
                old = current.to_json()["Attributes"] if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
                outcome.append(("ConditionalCheckFailed", "The conditional request failed", old))
            else:
                outcome.append((None, None, None))
            ops.append((op_type, op, key, current))
        if any(code is not None for code, _, _ in outcome):
            raise errors.TransactionCanceledException(outcome)
        written = []
        try:
            for op_type, op, key, current in ops:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], key, expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                     expression_attribute_names=names, expression_attribute_values=values)
                written.append((op["TableName"], key, copy.deepcopy(current)))
        except Exception:
            for table_name, key, before in reversed(written):
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before.to_json()["Attributes"])
            raise


def install():
    """Serializes the writes (transactions checked before written), and puts the projection in
    place when it agrees with moto's; returns whether the projection is in place."""
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = transact_write_items
    serialize_writes()
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
