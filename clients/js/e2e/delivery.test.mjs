// The client library end to end, against ws-local with API Gateway's limits shrunk (idle 3 s, a
// connection lives 8 s) and the real functions on moto: 300 messages posted to the client's
// conversation at 20/s while ws-local cuts its connection 5 times at random moments of the first
// half (a network drop: no close frame), and the client's heartbeat (1 s) and rollover (before
// 4 s) run on their own. The application callback must see all 300, once each, in order. Then a ban closes the
// connection and the client does not come back. Once with `ws-connection-tail` in Node, once with
// the library in a page of headless Chromium (the browser's own WebSocket).
//
// Needs DYNAMODB_ENDPOINT (scripts/test.sh starts moto), the debug binaries, the library built
// (npm run build) and chromium-headless-shell (scripts/tests/client.sh checks all of it).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { startChromium } from "../../../local/parity/devtools.mjs";
import { sleep } from "../../../local/parity/support.mjs";
import { drop, openConnectionsOf, servePage, startStack, target } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.CHROMIUM ?? "chromium-headless-shell";
const MESSAGES = Number(process.env.CLIENT_E2E_MESSAGES ?? 300);
const DROPS = 5;

let local;

before(async () => {
  local = await startStack(["--idle-timeout", "3", "--max-connection-duration", "8"]);
});

after(async () => {
  await local?.stop();
});

const invoke = async (event) => {
  const response = await fetch(`${local.base}/2015-03-31/functions/WebSocketResponder/invocations`, {
    method: "POST",
    body: JSON.stringify(event),
  });
  return response.json();
};

/** Posts `MESSAGES` progress messages at 20/s, cutting the user's connection `DROPS` times at random moments. */
async function run(conversation, user) {
  const duration = MESSAGES * 50;
  // The drops come in the first half; in the second the connection lives to its rollover (4 s)
  // while messages keep coming.
  const dropAt = Array.from({ length: DROPS }, () => 500 + Math.random() * (duration / 2 - 500)).sort((a, b) => a - b);
  const started = Date.now();
  let dropped = 0;
  const dropping = (async () => {
    for (const at of dropAt) {
      await sleep(Math.max(0, started + at - Date.now()));
      // The client may be between two connections at that moment: the drop waits for the next.
      for (let tries = 0; tries < 100; tries++) {
        const [id] = await openConnectionsOf(local, user);
        if (id && (await drop(local, id)) === 202) {
          dropped += 1;
          break;
        }
        await sleep(50);
      }
    }
  })();
  const answers = [];
  for (let i = 0; i < MESSAGES; i++) {
    await sleep(Math.max(0, started + i * 50 - Date.now()));
    answers.push(
      invoke({ conversationId: conversation, correlationId: `run-${conversation}`, sequence: i, isFinal: i === MESSAGES - 1, messageType: "progress", payload: { i } }),
    );
  }
  const settled = await Promise.all(answers);
  await dropping;
  const failed = settled.filter((a) => a.statusCode !== 200);
  const errors = local.lines.filter((line) => line.includes('"level":"ERROR"'));
  assert.deepEqual(failed, [], `every post was appended and fanned out; the functions' errors:\n${errors.join("\n")}`);
  const offsets = settled.map((a) => a.offset);
  assert.deepEqual(offsets.toSorted((a, b) => a - b), Array.from({ length: MESSAGES }, (_, i) => i + 1), "each post appended once");
  // What each offset holds (the posts overlap, so offset order is append order, not i's).
  const byOffset = new Map(settled.map((a, i) => [a.offset, i]));
  return { dropped, stream: Array.from({ length: MESSAGES }, (_, k) => ({ offset: k + 1, i: byOffset.get(k + 1) })) };
}

async function until(check, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Every disconnect the client reported was a drop (1006): the heartbeat kept each connection past
 * the idle timeout and the rollover ahead of its limit (either would be a 1001). A drop that lands
 * mid-rollover, on either of the two connections while the other is open, is absorbed without a
 * disconnect (the other one serves), so there are at most as many disconnects as drops, and some.
 */
function assertDisconnectsWereDrops(events, dropped) {
  const codes = events.filter((e) => e.event === "disconnected").map((e) => e.code);
  assert.deepEqual(codes, new Array(codes.length).fill(1006), `only drops closed a connection: ${JSON.stringify(events.filter((e) => e.event !== "resumed"))}`);
  assert.ok(codes.length >= 1 && codes.length <= dropped, `between 1 and ${dropped} disconnects, got ${codes.length}`);
}

/** What a client delivered, as {offset, i}: the same as the stream, in offset order, once each. */
const delivered = (envelopes) => envelopes.map((e) => ({ offset: e.offset, i: e.payload.i }));

test("ws-connection-tail in Node: every message once, in order, across drops and rollovers; a ban stops it", async (t) => {
  const tail = spawn(process.execPath, [
    path.join(here, "..", "bin", "ws-connection-tail.js"),
    "--url", local.websocket,
    "--token-command", `${path.join(target, "debug", "ws-local")} token --sub tail-user --url ${local.base}`,
    "--conversation", "conv-tail",
    "--heartbeat", "1",
    "--max-age", "4",
    "--backoff-cap", "1",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const received = [];
  const events = [];
  let out = "";
  let err = "";
  tail.stdout.setEncoding("utf8").on("data", (chunk) => {
    out += chunk;
    for (let end; (end = out.indexOf("\n")) >= 0; out = out.slice(end + 1)) received.push(JSON.parse(out.slice(0, end)));
  });
  tail.stderr.setEncoding("utf8").on("data", (chunk) => {
    err += chunk;
    for (let end; (end = err.indexOf("\n")) >= 0; err = err.slice(end + 1)) {
      const line = err.slice(0, end);
      events.push(line.startsWith("{") ? JSON.parse(line) : { text: line });
    }
  });
  const exited = new Promise((resolve) => tail.on("exit", (code) => resolve(code)));
  // Whatever fails before the ban, the CLI would reconnect for ever and keep this file's process alive.
  t.after(() => tail.kill());
  await until(() => events.some((e) => e.event === "resumed"), "the first resume");

  const { dropped, stream } = await run("conv-tail", "tail-user");
  await until(() => received.length >= MESSAGES, `${MESSAGES} messages (got ${received.length})`);
  await sleep(500);
  assert.deepEqual(delivered(received), stream);
  const rollovers = events.filter((e) => e.event === "connected" && e.rollover).length;
  const reconnects = events.filter((e) => e.event === "disconnected").length;
  console.log(`tail: ${MESSAGES} sent, ${dropped} drops, ${reconnects} reconnects, ${rollovers} rollovers, ${received.length} received once in order`);
  assert.equal(dropped, DROPS);
  assertDisconnectsWereDrops(events, dropped);
  assert.ok(rollovers >= 1, `a connection lived to its rollover: ${JSON.stringify(events.filter((e) => e.event !== "resumed"))}`);

  // A ban: the service closes the connection (1000 Connection deleted) and the client stops.
  await invoke({ action: "disconnect", userId: "tail-user", reason: "banned" });
  assert.equal(await Promise.race([exited, sleep(10_000).then(() => "still running")]), 1);
  assert.ok(events.some((e) => e.event === "closed" && e.code === 1000 && e.reason === "Connection deleted"), JSON.stringify(events.slice(-3)));
  await sleep(1000);
  assert.deepEqual(await openConnectionsOf(local, "tail-user"), [], "it did not reconnect");
});

test("the library in headless Chromium: every message once, in order, across drops and rollovers; a ban stops it", async (t) => {
  if (spawnSync("sh", ["-c", `command -v ${chromium}`]).status !== 0) {
    assert.fail(`${chromium} is missing: apt-get install -y chromium-headless-shell (scripts/tests/client.sh does)`);
  }
  // The page and the library from one origin (module scripts are not loaded from file://).
  const pageHtml = `<!doctype html><title>client</title><script type="module">
    import { Client } from "/dist/src/index.js";
    window.received = []; window.events = [];
    const client = new Client({
      url: ${JSON.stringify(local.websocket)}, conversationId: "conv-page",
      getToken: async () => (await (await fetch("/token")).json()).token,
      heartbeatInterval: 1000, maxConnectionAge: 4000, rolloverJitter: 400, backoffCap: 1000,
    });
    client.on("publication", (e) => window.received.push({ offset: e.offset, payload: e.payload }));
    for (const name of ["connected", "disconnected", "resumed", "gap", "closed", "unauthorized"]) client.on(name, (p) => window.events.push({ event: name, ...p }));
    client.connect();
  </script>`;
  const server = await servePage(local, pageHtml, "page-user");
  const { browser, devtools, profile } = await startChromium(chromium);
  t.after(async () => {
    await devtools.send("Browser.close").catch(() => {});
    browser.kill();
    await new Promise((resolve) => (browser.exitCode === null ? browser.once("exit", resolve) : resolve()));
    server.close();
    // Chromium's helpers may still be writing its profile: a leftover temp folder is harmless.
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
    } catch {}
  });
  const page = await devtools.open(server.url);
  await devtools.until(page, `window.events && window.events.some((e) => e.event === "resumed")`, "the page's first resume", 20_000);

  const { dropped, stream } = await run("conv-page", "page-user");
  await devtools.until(page, `window.received.length >= ${MESSAGES}`, `${MESSAGES} messages in the page`, 30_000);
  await sleep(500);
  assert.deepEqual(delivered(await devtools.evaluate(page, "window.received")), stream);
  const events = await devtools.evaluate(page, "window.events");
  const rollovers = events.filter((e) => e.event === "connected" && e.rollover).length;
  const reconnects = events.filter((e) => e.event === "disconnected").length;
  console.log(`browser: ${MESSAGES} sent, ${dropped} drops, ${reconnects} reconnects, ${rollovers} rollovers, ${MESSAGES} received once in order`);
  assert.equal(dropped, DROPS);
  assertDisconnectsWereDrops(events, dropped);
  assert.ok(rollovers >= 1, `a connection lived to its rollover: ${JSON.stringify(events.filter((e) => e.event !== "resumed"))}`);

  await invoke({ action: "disconnect", userId: "page-user", reason: "banned" });
  await devtools.until(page, `window.events.some((e) => e.event === "closed" && e.reason === "Connection deleted")`, "the page's client to stop");
  await sleep(1500);
  assert.deepEqual(await openConnectionsOf(local, "page-user"), [], "it did not reconnect");
});
