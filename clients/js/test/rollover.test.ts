import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, STREAM, envelope, offsets, resumed, settle, start } from "./support.js";

test("before the 2-hour limit a new connection opens and resumes, then the old one closes: no gap, no duplicate", async () => {
  const { client, clock, seen } = await start({ maxConnectionAge: 115 * 60_000, rolloverJitter: 0, heartbeatInterval: 24 * 3_600_000 });
  const old = FakeSocket.last();
  old.open();
  old.receive(resumed([{ from: 1, to: 0 }]));
  old.receive(envelope(1));
  clock.advance(3000);
  old.receive(resumed([{ from: 2, to: 1 }])); // the recheck after the connect
  clock.advance(115 * 60_000 - 3000);
  await settle();
  assert.equal(FakeSocket.all.length, 2, "a second connection opens while the first still serves");
  const fresh = FakeSocket.last();
  old.receive(envelope(2)); // still arriving on the old one
  fresh.open();
  assert.deepEqual(fresh.resumes(), [{ action: "resume", streams: [{ stream: STREAM, offset: 2, epoch: "e1" }] }]);
  fresh.receive(envelope(3));
  old.receive(envelope(3));
  fresh.receive(resumed([{ from: 3, to: 3, offsets: [3] }]));
  assert.deepEqual(old.closedBy, { code: 1000, reason: "rollover" });
  fresh.receive(envelope(4));
  assert.deepEqual(offsets(seen), [1, 2, 3, 4]);
  assert.equal(client.state, "connected");
  assert.ok(!seen.log.some((l) => l.startsWith("disconnected")), "the application saw no disconnect");
});

test("the rollover time is spread by jitter", async () => {
  const { clock } = await start({ maxConnectionAge: 100_000, rolloverJitter: 40_000, random: () => 0.25 });
  FakeSocket.last().open();
  clock.advance(89_999);
  assert.equal(FakeSocket.all.length, 1);
  clock.advance(1);
  await settle();
  assert.equal(FakeSocket.all.length, 2, "at 100 s - 0.25 x 40 s");
});

/** A client whose first connection is open and resumed, at the moment its rollover opens a second. */
async function midRollover() {
  const started = await start({ maxConnectionAge: 60_000, rolloverJitter: 0, heartbeatInterval: 24 * 3_600_000, recheckAfter: 24 * 3_600_000 });
  const old = FakeSocket.last();
  old.open();
  old.receive(resumed([{ from: 1, to: 0 }]));
  old.receive(envelope(1));
  started.clock.advance(60_000);
  await settle();
  assert.equal(FakeSocket.all.length, 2, "the rollover opened a second connection");
  return { ...started, old, fresh: FakeSocket.last() };
}

test("the old connection dropping after the new one opened: the new one takes over, and the application sees no disconnect", async () => {
  const { client, clock, seen, old, fresh } = await midRollover();
  fresh.open();
  old.drop();
  fresh.receive(resumed([{ from: 2, to: 2, offsets: [2] }]));
  fresh.receive(envelope(3));
  clock.advance(10_000);
  await settle();
  assert.equal(FakeSocket.all.length, 2, "no third connection");
  assert.deepEqual(offsets(seen), [1, 2, 3]);
  assert.equal(client.state, "connected");
  assert.ok(!seen.log.some((l) => l.startsWith("disconnected")), seen.log.join("\n"));
});

test("the old connection dropping before the new one opened: one disconnect, then the new one is the connection (no second reconnect)", async () => {
  const { client, clock, seen, old, fresh } = await midRollover();
  old.drop();
  assert.equal(seen.log.filter((l) => l.startsWith("disconnected")).length, 1, seen.log.join("\n"));
  assert.equal(client.state, "connecting");
  clock.advance(10_000); // past any backoff: the connection on its way is the reconnect
  await settle();
  assert.equal(FakeSocket.all.length, 2, "no third connection while the second is on its way");
  fresh.open();
  assert.equal(client.state, "connected");
  assert.deepEqual(fresh.resumes(), [{ action: "resume", streams: [{ stream: STREAM, offset: 1, epoch: "e1" }] }]);
  fresh.receive(resumed([{ from: 2, to: 2, offsets: [2] }]));
  assert.deepEqual(offsets(seen), [1, 2]);
  clock.advance(60_000);
  await settle();
  assert.equal(FakeSocket.all.length, 3, "and it rolls over in its turn");
});

test("the new connection dropping mid-rollover: the old one still serves, and the rollover is tried again", async () => {
  const { client, clock, seen, old, fresh } = await midRollover();
  fresh.open();
  fresh.drop();
  old.receive(envelope(2));
  assert.equal(client.state, "connected");
  assert.ok(!seen.log.some((l) => l.startsWith("disconnected")), seen.log.join("\n"));
  assert.equal(old.closedBy, null, "the old connection is kept");
  clock.advance(10_000);
  await settle();
  assert.equal(FakeSocket.all.length, 3, "another rollover");
  FakeSocket.last().open();
  FakeSocket.last().receive(resumed([{ from: 3, to: 3, offsets: [3] }]));
  assert.deepEqual(old.closedBy, { code: 1000, reason: "rollover" });
  assert.deepEqual(offsets(seen), [1, 2, 3]);
});

test("a ban closing the old connection mid-rollover stops the client and closes the new one too", async () => {
  const { client, clock, seen, old, fresh } = await midRollover();
  fresh.open();
  old.drop(1000, "Connection deleted");
  assert.equal(client.state, "closed");
  assert.deepEqual(fresh.closedBy, { code: 1000, reason: "closed" });
  assert.ok(seen.log.some((l) => l.startsWith("closed")), seen.log.join("\n"));
  clock.advance(60_000);
  await settle();
  assert.equal(FakeSocket.all.length, 2, "nothing reconnects");
});
