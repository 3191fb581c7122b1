"""Tests of scripts/moto_server.py: its projection gives moto's item for every projection, over
generated items and projections, and the launcher puts it in place; a Query through it answers
what moto answers. Run by scripts/test.sh with the venv's python.

    .venv/bin/python3 scripts/tests/moto_server_test.py
"""

import base64
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import moto_server  # noqa: E402
from moto.dynamodb.models import dynamo_type  # noqa: E402

CASES = int(os.environ.get("MOTO_SERVER_CASES", "400"))
NAMES = ["pk", "sk", "gsi1pk", "gsi1sk", "connectionId", "status", "apiId", "stage", "region", "ttl", "tokenExp", "x"]


def value(rng, depth=0):
    """A DynamoDB attribute value of any type (nested ones at most two levels deep)."""
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS"] + (["M", "L"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "S":
        return {"S": rng.choice(["", "a", "CONN#abc=", "é", "x" * rng.randint(1, 40)])}
    if kind == "N":
        return {"N": rng.choice(["0", "1", "-7", "1.50", "1900000000", "0.001", "1e3"])}
    if kind == "B":
        return {"B": base64.b64encode(bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8)))).decode()}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": rng.sample(["a", "b", "c", "d"], rng.randint(1, 4))}
    if kind == "NS":
        return {"NS": rng.sample(["1", "2", "3.5"], rng.randint(1, 3))}
    if kind == "M":
        return {"M": {f"k{i}": value(rng, depth + 1) for i in range(rng.randint(0, 3))}}
    return {"L": [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


def item(rng):
    attrs = {"pk": {"S": "CONN#abc="}, "sk": {"S": "META"}}
    for name in rng.sample(NAMES[2:], rng.randint(0, len(NAMES) - 2)):
        # Mostly strings and numbers, as the table holds; any type now and then.
        attrs[name] = rng.choice([{"S": f"v-{name}"}, {"N": str(rng.randint(0, 10**10))}]) if rng.random() < 0.8 else value(rng)
    return attrs


def projection(rng, attrs):
    """Top-level names (some absent, some repeated), now and then a nested path or a list item."""
    paths = [[rng.choice(NAMES + ["absent"])] for _ in range(rng.randint(0, 8))]
    if rng.random() < 0.15:
        maps = [name for name, v in attrs.items() if "M" in v or "L" in v] or ["x"]
        paths.append([rng.choice(maps), "k0"] if rng.random() < 0.5 else [rng.choice(maps) + "[0]"])
    return paths


class Projection(unittest.TestCase):
    def test_it_agrees_with_moto_on_generated_items_and_projections(self):
        rng = random.Random(20261201)
        for case in range(CASES):
            attrs = item(rng)
            paths = projection(rng, attrs)
            with self.subTest(case=case, attrs=attrs, paths=paths):
                self.assertTrue(moto_server.agrees(attrs, [paths]))

    def test_a_binary_attribute_is_left_to_moto(self):
        # Found by the generated cases: moto's JSON round trip gives a binary back as bytes, not the
        # base64 text it stored; a copy would answer otherwise, so such projections stay moto's.
        attrs = {"pk": {"S": "CONN#abc="}, "sk": {"S": "META"}, "x": {"B": "AAEC"}}
        self.assertTrue(moto_server.agrees(attrs, [[["x"]]]))

    def test_a_projection_copies_and_does_not_share_the_stored_values(self):
        attrs = {"pk": {"S": "CONN#abc="}, "sk": {"S": "META"}, "status": {"S": "CONNECTED"}}
        stored = dynamo_type.Item(dynamo_type.DynamoType(attrs["pk"]), dynamo_type.DynamoType(attrs["sk"]), attrs)
        projected = moto_server.project(stored, [["status"]])
        self.assertIsNot(projected.attrs["status"], stored.attrs["status"])
        self.assertEqual(set(projected.attrs), {"status"})

    def test_the_launcher_installs_it(self):
        original = dynamo_type.Item.project
        try:
            self.assertTrue(moto_server.install())
            self.assertIs(dynamo_type.Item.project, moto_server.project)
        finally:
            dynamo_type.Item.project = original


def concurrent_appends(endpoint, appenders=20, putters=20):
    """Threads at once against `endpoint`: each appender appends as a stream does (a transaction
    cancelled when another moved the head first; it reads the head again), each putter puts one
    plain item. Returns (plain items missing, the head's last offset, entries missing)."""
    import threading

    import boto3

    db = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    db.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    db.put_item(TableName="t", Item={"pk": {"S": "head"}, "last": {"N": "0"}})

    def append(n):
        for _ in range(200):
            item = db.get_item(TableName="t", Key={"pk": {"S": "head"}}, ConsistentRead=True).get("Item")
            last = item["last"]["N"] if item else "0"
            try:
                db.transact_write_items(TransactItems=[
                    {"Update": {"TableName": "t", "Key": {"pk": {"S": "head"}}, "UpdateExpression": "SET #l = :n",
                                "ConditionExpression": "#l = :p", "ExpressionAttributeNames": {"#l": "last"},
                                "ExpressionAttributeValues": {":n": {"N": str(int(last) + 1)}, ":p": {"N": last}}}},
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": f"entry-{int(last) + 1}"}, "by": {"S": str(n)}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                ])
                return
            except db.exceptions.TransactionCanceledException:
                continue

    def put(n):
        db.put_item(TableName="t", Item={"pk": {"S": f"plain-{n}"}})

    threads = [threading.Thread(target=append, args=(n,)) for n in range(appenders)]
    threads += [threading.Thread(target=put, args=(n,)) for n in range(putters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = {item["pk"]["S"] for item in db.scan(TableName="t", ConsistentRead=True)["Items"]}
    head = db.get_item(TableName="t", Key={"pk": {"S": "head"}}, ConsistentRead=True).get("Item")
    last = int(head["last"]["N"]) if head else 0
    missing_plain = {f"plain-{n}" for n in range(putters)} - keys
    missing_entries = {f"entry-{i}" for i in range(1, appenders + 1)} - keys
    return missing_plain, last, missing_entries


class Transactions(unittest.TestCase):
    def test_a_cancelled_transaction_loses_no_concurrent_write_through_the_launcher(self):
        # Plain moto puts back its copy of the table when a transaction is cancelled, erasing
        # what other request threads wrote meanwhile (a run against it lost heads and entries).
        import socket
        import subprocess
        import time
        import urllib.request

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "moto_server.py")
        server = subprocess.Popen([sys.executable, launcher, "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            missing_plain, last, missing_entries = concurrent_appends(f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait()
        self.assertEqual(missing_plain, set(), "a plain write was lost")
        self.assertEqual((last, missing_entries), (20, set()), "every append landed once, gap-free")


class Query(unittest.TestCase):
    """A GSI query with a ProjectionExpression, paged, through moto with and without it."""

    def query_all(self):
        import boto3
        from moto import mock_aws

        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="t",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "GSI1",
                        "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["connectionId", "status", "apiId"]},
                    }
                ],
            )
            for i in range(25):
                cid = f"c{i:03d}="
                client.put_item(
                    TableName="t",
                    Item={
                        "pk": {"S": f"CONN#{cid}"},
                        "sk": {"S": "META"},
                        "gsi1pk": {"S": "CONV#a"},
                        "gsi1sk": {"S": f"CONN#{cid}"},
                        "connectionId": {"S": cid},
                        "status": {"S": "CONNECTED" if i % 3 else "GONE"},
                        "apiId": {"S": "api"},
                        "ip": {"S": "127.0.0.1"},
                        "ttl": {"N": str(1900000000 + i)},
                    },
                )
            pages, start = [], None
            while True:
                args = {
                    "TableName": "t",
                    "IndexName": "GSI1",
                    "Limit": 10,
                    "KeyConditionExpression": "gsi1pk = :pk",
                    "FilterExpression": "#status = :connected",
                    "ProjectionExpression": "connectionId, apiId, ip",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":pk": {"S": "CONV#a"}, ":connected": {"S": "CONNECTED"}},
                }
                if start:
                    args["ExclusiveStartKey"] = start
                out = client.query(**args)
                pages.append((out["Items"], out["Count"], out["ScannedCount"], out.get("LastEvaluatedKey")))
                start = out.get("LastEvaluatedKey")
                if not start:
                    return pages

    def test_a_paged_query_answers_as_moto_does(self):
        original = dynamo_type.Item.project
        theirs = self.query_all()
        try:
            self.assertTrue(moto_server.install())
            ours = self.query_all()
        finally:
            dynamo_type.Item.project = original
        self.assertEqual(ours, theirs)
        self.assertEqual(sum(count for _, count, _, _ in ours), 16, "25 records, a third GONE")
        self.assertNotIn("ip", ours[0][0][0], "not in the index's projection")


if __name__ == "__main__":
    unittest.main(verbosity=1)
