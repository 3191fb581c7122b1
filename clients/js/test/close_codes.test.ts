import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, settle, start } from "./support.js";

test("a close by the service for a ban or an expired token stops and says why", async () => {
  const { client, clock, seen } = await start();
  FakeSocket.last().open();
  FakeSocket.last().drop(1000, "Connection deleted");
  clock.advance(120_000);
  await settle();
  assert.equal(client.state, "closed");
  assert.equal(FakeSocket.all.length, 1, "no reconnect");
  assert.ok(seen.log.includes('closed {"code":1000,"reason":"Connection deleted","reconnect":false}'), seen.log.join("\n"));
});

for (const code of [1001, 1006, 1011, 1012]) {
  test(`a ${code} close reconnects after a backoff, with a fresh token`, async () => {
    const { client, clock, tokens } = await start();
    FakeSocket.last().open();
    FakeSocket.last().drop(code, "Going away");
    assert.equal(client.state, "disconnected");
    clock.advance(250); // random 0.5 of the first ceiling (500 ms)
    await settle();
    assert.equal(FakeSocket.all.length, 2);
    assert.deepEqual(tokens, ["t1", "t2"]);
    assert.deepEqual(FakeSocket.last().protocols, ["ws-connection.v1", "bearer.t2"]);
  });
}

test("a refused handshake asks for a token once more, then stops as unauthorized", async () => {
  const { client, seen, tokens } = await start();
  FakeSocket.last().refuse(403);
  await settle();
  assert.equal(FakeSocket.all.length, 2, "one more try at once");
  FakeSocket.last().refuse(401);
  await settle();
  assert.equal(client.state, "closed");
  assert.deepEqual(tokens, ["t1", "t2"]);
  assert.ok(seen.log.some((l) => l.startsWith('unauthorized {"status":401}')), seen.log.join("\n"));
});

test("close() ends everything: the socket closes with 1000 and nothing reconnects", async () => {
  const { client, clock } = await start();
  const socket = FakeSocket.last();
  socket.open();
  client.close();
  clock.advance(10 * 60 * 60 * 1000);
  await settle();
  assert.deepEqual(socket.closedBy, { code: 1000, reason: "closed" });
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(client.state, "closed");
});

test("a connection that lived long enough resets the backoff", async () => {
  const { clock, seen } = await start({ resetBackoffAfter: 30_000 });
  for (let i = 0; i < 4; i++) {
    FakeSocket.last().drop(1006); // never opened: the backoff grows
    clock.advance(20_000);
    await settle();
  }
  FakeSocket.last().open();
  clock.advance(31_000);
  FakeSocket.last().drop(1006);
  const connecting = seen.log.filter((l) => l.startsWith("connecting"));
  assert.equal(connecting.at(-1), 'connecting {"attempt":1,"delay":250}', connecting.join("\n"));
});
