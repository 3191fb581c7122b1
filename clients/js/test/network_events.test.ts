import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, settle, start } from "./support.js";

test("offline closes the connection and waits; online reconnects at once", async () => {
  const network = new EventTarget();
  const { clock, client } = await start({ network });
  FakeSocket.last().open();
  network.dispatchEvent(new Event("offline"));
  assert.deepEqual(FakeSocket.last().closedBy, { code: 4000, reason: "offline" });
  clock.advance(60_000);
  await settle();
  assert.equal(FakeSocket.all.length, 1, "no reconnect while offline");
  network.dispatchEvent(new Event("online"));
  await settle();
  assert.equal(FakeSocket.all.length, 2, "at once, without waiting out a backoff");
  FakeSocket.last().open();
  assert.equal(client.state, "connected");
});

test("the token goes as a subprotocol next to the application protocol, or in the query", async () => {
  await start({ conversationId: "c1" });
  assert.equal(FakeSocket.last().url, "ws://127.0.0.1:9/local?correlationId=c1");
  assert.deepEqual(FakeSocket.last().protocols, ["ws-connection.v1", "bearer.t1"]);
  await start({ tokenTransport: "query", protocol: "chat.v1" });
  assert.equal(FakeSocket.last().url, "ws://127.0.0.1:9/local?token=t1");
  assert.deepEqual(FakeSocket.last().protocols, ["chat.v1"]);
});
