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
