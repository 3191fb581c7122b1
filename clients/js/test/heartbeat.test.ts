import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, settle, start } from "./support.js";

test("a ping goes out every interval, under the idle timeout, and a pong keeps the connection", async () => {
  const { clock } = await start({ heartbeatInterval: 300_000, pongTimeout: 20_000 });
  const socket = FakeSocket.last();
  socket.open();
  clock.advance(300_000);
  assert.equal(socket.sent.filter((m) => m.action === "ping").length, 1);
  socket.receive({ type: "pong", at: 1 });
  clock.advance(300_000);
  assert.equal(socket.sent.filter((m) => m.action === "ping").length, 2);
  assert.equal(socket.closedBy, null);
});

test("no pong: the connection is dead; it closes and reconnects", async () => {
  const { clock } = await start({ heartbeatInterval: 300_000, pongTimeout: 20_000 });
  const socket = FakeSocket.last();
  socket.open();
  clock.advance(320_000);
  await settle();
  assert.deepEqual(socket.closedBy, { code: 4000, reason: "no pong" });
  clock.advance(1000);
  await settle();
  assert.equal(FakeSocket.all.length, 2);
});
