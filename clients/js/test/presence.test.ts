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
