import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, STREAM, envelope, offsets, resumed, settle, start } from "./support.js";

test("after each connect the client resumes from the last offset it delivered", async () => {
  const { clock, seen } = await start();
  FakeSocket.last().open();
  assert.deepEqual(FakeSocket.last().resumes(), [{ action: "resume" }], "no stream known yet: its own, from now");
  FakeSocket.last().receive(resumed([{ from: 5, to: 4 }]));
  FakeSocket.last().receive(envelope(5));
  FakeSocket.last().receive(envelope(6));
  FakeSocket.last().drop(1006);
  clock.advance(1000);
  await settle();
  FakeSocket.last().open();
  assert.deepEqual(FakeSocket.last().resumes(), [{ action: "resume", streams: [{ stream: STREAM, offset: 6, epoch: "e1" }] }]);
  FakeSocket.last().receive(resumed([{ from: 7, to: 9, offsets: [7, 8, 9] }]));
  assert.deepEqual(offsets(seen), [5, 6, 7, 8, 9]);
});

test("a gap in offsets asks for a resume, and the resume fills it", async () => {
  const { seen } = await start();
  const socket = FakeSocket.last();
  socket.open();
  socket.receive(resumed([{ from: 1, to: 0 }]));
  socket.receive(envelope(1));
  socket.receive(envelope(3)); // 2 was missed
  assert.deepEqual(socket.resumes().at(-1), { action: "resume", streams: [{ stream: STREAM, offset: 1, epoch: "e1" }] });
  socket.receive(resumed([{ from: 2, to: 3, offsets: [2, 3] }]));
  assert.deepEqual(offsets(seen), [1, 2, 3]);
});

test("recovered: false is a gap event naming the stream, and delivery goes on from what the service has", async () => {
  const { seen } = await start();
  const socket = FakeSocket.last();
  socket.open();
  socket.receive(resumed([{ from: 1, to: 0 }]));
  socket.receive(envelope(1));
  socket.receive(envelope(1, "e2")); // an epoch it does not know: resume
  socket.receive(resumed([{ epoch: "e2", recovered: false, from: 1, to: 2, offsets: [1, 2] }]));
  assert.deepEqual(seen.gaps.map((g) => [g.stream, g.epoch]), [[STREAM, "e2"]]);
  assert.deepEqual(seen.publications.map((p) => `${p.epoch}:${p.offset}`), ["e1:1", "e2:1", "e2:2"]);
  socket.receive(envelope(1, "e1")); // a late frame of the lost epoch
  assert.equal(seen.publications.length, 3);
});

test("more: true asks again from where the answer stopped", async () => {
  const { seen } = await start();
  const socket = FakeSocket.last();
  socket.open();
  socket.receive(resumed([{ from: 1, to: 0 }]));
  socket.receive(envelope(1));
  socket.receive(envelope(9));
  socket.receive(resumed([{ from: 2, to: 4, offsets: [2, 3, 4] }], true));
  assert.deepEqual(socket.resumes().at(-1), { action: "resume", streams: [{ stream: STREAM, offset: 4, epoch: "e1" }] });
  socket.receive(resumed([{ from: 5, to: 9, offsets: [5, 6, 7, 8, 9] }]));
  assert.deepEqual(offsets(seen), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("one resume is in flight at a time; what is asked meanwhile follows its answer", async () => {
  const { clock } = await start({ recheckAfter: 3000 });
  const socket = FakeSocket.last();
  socket.open();
  clock.advance(3000); // the recheck, while the first resume is unanswered
  assert.equal(socket.resumes().length, 1);
  socket.receive(resumed([{ from: 1, to: 0 }]));
  assert.equal(socket.resumes().length, 2, "the recheck went after the answer");
});

test("a resume never answered is sent again", async () => {
  const { clock } = await start({ resumeTimeout: 10_000, recheckAfter: 60_000 });
  const socket = FakeSocket.last();
  socket.open();
  clock.advance(10_000);
  assert.equal(socket.resumes().length, 2);
});
