import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, resumed, settle, start } from "./support.js";

test("presence() asks on the connection and resolves with the answer; a cursor asks for the next page", async () => {
  const { client } = await start();
  const socket = FakeSocket.last();
  socket.open();
  socket.receive(resumed([{ from: 1, to: 0 }]));
  const first = client.presence();
  assert.deepEqual(socket.sent.at(-1), { action: "presence" });
  const page = { type: "presence", conversationId: "c1", users: [{ userId: "ana", connections: 2, since: "2026-12-03T10:00:00.000Z" }], cursor: "next" };
  socket.receive(page);
  assert.deepEqual(await first, page);
  const second = client.presence({ cursor: "next" });
  assert.deepEqual(socket.sent.at(-1), { action: "presence", cursor: "next" });
  socket.receive({ type: "presence", conversationId: "c1", users: [] });
  assert.deepEqual((await second).users, []);
});

test("presence() rejects when not connected, on the service's refusal, with no answer in time, and when the client stops", async () => {
  const { client, clock } = await start();
  await assert.rejects(client.presence(), /not connected \(connecting\)/);
  const socket = FakeSocket.last();
  socket.open();

  const refused = client.presence();
  socket.receive({ type: "error", action: "presence", error: "a connection may ask for the presence of its own conversation only" });
  await assert.rejects(refused, /the service refused presence: a connection may ask/);

  const unanswered = client.presence({ timeout: 5_000 });
  clock.advance(5_000);
  await assert.rejects(unanswered, /no presence answer within 5000 ms/);

  const pending = client.presence();
  client.close();
  await assert.rejects(pending, /the client stopped/);
  await settle();
});

test("a presence question outlives a rollover: asked again on the new connection, answered there", async () => {
  const { client, clock } = await start({ maxConnectionAge: 60_000, rolloverJitter: 0, heartbeatInterval: 24 * 3_600_000, recheckAfter: 24 * 3_600_000 });
  const old = FakeSocket.last();
  old.open();
  old.receive(resumed([{ from: 1, to: 0 }]));
  const asked = client.presence({ timeout: 120_000 });
  clock.advance(60_000);
  await settle();
  const fresh = FakeSocket.last();
  fresh.open();
  fresh.receive(resumed([{ from: 1, to: 0 }])); // the rollover completes: the old one closes
  assert.deepEqual(fresh.sent.filter((m) => m.action === "presence"), [{ action: "presence" }], "asked again on the new connection");
  fresh.receive({ type: "presence", conversationId: "c1", users: [] });
  assert.deepEqual((await asked).users, []);
});

test("a presence question on a connection that drops is refused at once, and a later one is answered on the next", async () => {
  const { client, clock } = await start();
  const first = FakeSocket.last();
  first.open();
  const lost = client.presence();
  first.drop();
  await assert.rejects(lost, /the connection closed \(1006\) before the presence answer/);
  clock.advance(30_000);
  await settle();
  const second = FakeSocket.last();
  assert.notEqual(second, first);
  second.open();
  const asked = client.presence();
  second.receive({ type: "presence", conversationId: "c1", users: [{ userId: "bo", connections: 1, since: "2026-12-03T10:00:00.000Z" }] });
  assert.equal((await asked).users[0].userId, "bo");
});
