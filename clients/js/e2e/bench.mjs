// The client library's figures (scripts/bench.sh client), in headless Chromium against ws-local:
//   - from a network drop (ws-local cuts the connection) to the `resumed` event on the new
//     connection, 20 times, each after a connection that lived over a second (resetBackoffAfter
//     1000: every drop is a first retry): p50 and p90 (the backoff's random wait, 0-500 ms, is part of it);
//   - how many messages per second the library delivers to the application in the tab: 50,000
//     stream envelopes handed to it as frames by a socket in the page (no network: the library's
//     own parse, order and dispatch), in order, with every tenth one also sent twice (a resume's
//     duplicate) — counted from the first frame to the last `publication`.
// Prints one JSON object. Needs DYNAMODB_ENDPOINT, the debug binaries, the built library and
// chromium-headless-shell.

import { startChromium } from "../../../local/parity/devtools.mjs";
import { sleep } from "../../../local/parity/support.mjs";
import { drop, openConnectionsOf, servePage, startStack } from "./support.mjs";

const DROPS = Number(process.env.CLIENT_BENCH_DROPS ?? 20);
const MESSAGES = Number(process.env.CLIENT_BENCH_MESSAGES ?? 50000);
const chromium = process.env.CHROMIUM ?? "chromium-headless-shell";

const local = await startStack();
const html = `<!doctype html><title>bench</title><script type="module">
  import { Client } from "/dist/src/index.js";
  window.events = [];
  const client = new Client({ url: ${JSON.stringify(local.websocket)}, conversationId: "conv-bench", recheckAfter: 60000,
                              resetBackoffAfter: 1000,
                              getToken: async () => (await (await fetch("/token")).json()).token });
  client.on("resumed", () => window.events.push({ event: "resumed", at: Date.now() }));
  client.connect();
</script>`;
const server = await servePage(local, html, "bench-user");
const { browser, devtools } = await startChromium(chromium);
try {
  const page = await devtools.open(server.url);
  await devtools.until(page, "window.events.length > 0", "the first resume", 20_000);

  const resumes = [];
  for (let i = 0; i < DROPS; i++) {
    const [id] = await openConnectionsOf(local, "bench-user");
    const before = await devtools.evaluate(page, "window.events.length");
    const at = Date.now();
    await drop(local, id);
    const resumedAt = await devtools.until(page, `window.events.length > ${before} && window.events.at(-1).at`, "the resume after a drop", 30_000);
    resumes.push(resumedAt - at);
    await sleep(1200); // the connection lives past resetBackoffAfter: the next drop is a first retry again
  }
  resumes.sort((a, b) => a - b);
  const pct = (p) => resumes[Math.min(resumes.length - 1, Math.floor((p / 100) * resumes.length))];

  const throughput = await devtools.evaluate(page, `(async () => {
    const { Client } = await import("/dist/src/index.js");
    let socket;
    class InPage { constructor() { socket = this; this.readyState = 1; this.protocol = "x"; setTimeout(() => this.onopen({}), 0); }
                   send() {} close() {} }
    const client = new Client({ url: "ws://in-page/x", WebSocket: InPage, network: null, heartbeatInterval: 3600000, recheckAfter: 3600000 });
    let delivered = 0;
    client.on("publication", () => delivered++);
    client.connect();
    await new Promise((r) => setTimeout(r, 10));
    socket.onmessage({ data: JSON.stringify({ type: "resumed", streams: [{ stream: "s", epoch: "e", recovered: true, from: 1, to: 0, messages: [] }] }) });
    const frames = [];
    for (let o = 1; o <= ${MESSAGES}; o++) {
      const frame = JSON.stringify({ messageType: "m", correlationId: null, sequence: o, isFinal: false, payload: { n: o }, stream: "s", offset: o, epoch: "e" });
      frames.push(frame);
      if (o % 10 === 0) frames.push(frame);
    }
    const started = performance.now();
    for (const data of frames) socket.onmessage({ data });
    const took = performance.now() - started;
    client.close();
    return { delivered, took };
  })()`);
  if (throughput.delivered !== MESSAGES) throw new Error(`delivered ${throughput.delivered} of ${MESSAGES}`);
  console.log(JSON.stringify({
    drops: DROPS,
    dropToResumedP50: pct(50),
    dropToResumedP90: pct(90),
    messages: MESSAGES,
    deliveredPerSecond: Math.round(MESSAGES / (throughput.took / 1000)),
  }));
} finally {
  await devtools.send("Browser.close").catch(() => {});
  browser.kill();
  server.close();
  await local.stop();
}
