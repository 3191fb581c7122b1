import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, envelope, offsets, resumed, start } from "./support.js";

test("a resume that races live messages delivers each offset once, in order", async () => {
  const { seen } = await start();
  const socket = FakeSocket.last();
  socket.open();
  socket.receive(resumed([{ from: 1, to: 0 }]));
  socket.receive(envelope(1));
  socket.receive(envelope(2));
  socket.receive(envelope(5)); // 3 and 4 missed: resume; 5 is dropped until they come
  socket.receive(envelope(6));
  // The answer holds 3-6; live 6 and 7 also come, before and after it.
  socket.receive(resumed([{ from: 3, to: 6, offsets: [3, 4, 5, 6] }]));
  socket.receive(envelope(6));
  socket.receive(envelope(7));
  assert.deepEqual(offsets(seen), [1, 2, 3, 4, 5, 6, 7]);
});

test("posts to this connection alone (no stream) are delivered as they come", async () => {
  const { seen } = await start();
  const socket = FakeSocket.last();
  socket.open();
  socket.receive({ messageType: "system", correlationId: null, sequence: null, isFinal: false, payload: "hi" });
  assert.equal(seen.publications.length, 1);
  assert.equal(seen.publications[0]?.payload, "hi");
});

test("two streams are ordered each on its own", async () => {
  const { seen } = await start();
  const socket = FakeSocket.last();
  socket.open();
  const user = "user/us-east-1/u1";
  socket.receive(resumed([{ from: 1, to: 0 }, { stream: user, epoch: "u", from: 1, to: 0 }]));
  socket.receive(envelope(1, "u", user));
  socket.receive(envelope(1));
  socket.receive(envelope(2, "u", user));
  socket.receive(envelope(1, "u", user));
  assert.deepEqual(seen.publications.map((p) => `${p.stream}:${p.offset}`), [`${user}:1`, "conv/us-east-1/c1:1", `${user}:2`]);
});
