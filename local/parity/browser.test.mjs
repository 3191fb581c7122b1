// The console in a real browser: headless Chromium (the Debian package chromium-headless-shell,
// which scripts/test.sh installs when it is missing) opens a page that connects to the real stack
// (the project's manifest: the authorizer, ConnectFunction on moto, the responder) with
// `new WebSocket(url, ["chat.v1", "bearer." + token])`, and ws-local's console at /_console.
// The console's forms post to the connection and invoke the responder for its conversation, and its
// events list shows the connection opened; the test reads what the page received from its DOM,
// and saves a screenshot of the console (target/parity/console.png). Chromium is driven over the
// DevTools protocol with the `ws` client.
//
// Needs DYNAMODB_ENDPOINT (moto's server; scripts/test.sh starts one) and the debug binaries.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { startChromium } from "./devtools.mjs";
import { root, startWsLocal } from "./support.mjs";

const chromium = process.env.CHROMIUM ?? "chromium-headless-shell";
const endpoint = process.env.DYNAMODB_ENDPOINT;
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
const screenshot = path.join(target, "parity", "console.png");

let local;
let browser;
let devtools;
let profile;

before(async () => {
  assert.ok(endpoint, "DYNAMODB_ENDPOINT is not set: run scripts/test.sh, which starts moto and sets it");
  const which = spawnSync("sh", ["-c", `command -v ${chromium}`]);
  assert.equal(which.status, 0, `${chromium} is missing: apt-get install -y chromium-headless-shell (scripts/test.sh does)`);

  const table = `browser-${Date.now()}`;
  const python = fs.existsSync(path.join(root, ".venv", "bin", "python")) ? path.join(root, ".venv", "bin", "python") : "python3";
  const created = spawnSync(python, [path.join(root, "scripts", "local_table.py"), "--endpoint", endpoint, "--name", table]);
  assert.equal(created.status, 0, `could not create the table: ${created.stderr}`);
  local = await startWsLocal([
    "--manifest", path.join(root, "lambda.manifest.json"),
    "--bin-dir", path.join(target, "debug"),
    "--table", table,
    "--dynamodb-endpoint", endpoint,
  ]);

  ({ browser, devtools, profile } = await startChromium(chromium));
});

after(async () => {
  await devtools?.send("Browser.close").catch(() => {});
  browser?.kill();
  await local?.stop();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

test("a browser client receives what the console's forms send", async () => {
  const { token } = await (
    await fetch(`${local.base}/issuer/token`, { method: "POST", body: JSON.stringify({ sub: "browser-user" }) })
  ).json();

  // The client page: what a web app does, with the token in the subprotocol list.
  const page = path.join(profile, "client.html");
  fs.writeFileSync(page, `<!doctype html><title>connecting</title><ul id="received"></ul><script>
    const socket = new WebSocket(${JSON.stringify(`${local.websocket}?correlationId=conv-browser`)}, ["chat.v1", "bearer." + ${JSON.stringify(token)}]);
    socket.onopen = () => { document.title = "open " + socket.protocol; };
    socket.onclose = (e) => { document.title = "closed " + e.code; };
    socket.onmessage = (e) => { const li = document.createElement("li"); li.textContent = e.data; received.append(li); };
  </script>`);
  const client = await devtools.open(`file://${page}`);
  assert.equal(await devtools.until(client, `document.title.startsWith("open") && document.title`, "the client's socket to open"), "open chat.v1");

  const consolePage = await devtools.open(`${local.base}/_console`);
  await devtools.until(consolePage, `[...document.querySelectorAll("#connections tbody tr[data-id]")].some((row) => row.textContent.includes("browser-user") && row.textContent.includes("conv-browser"))`, "the console to list the connection with its user and conversation");

  // The console's Management API form.
  const posted = `posted through the console form ${Date.now()}`;
  await devtools.until(consolePage, `document.getElementById("post-connection").value`, "the connection to be chosen in the post form");
  await devtools.evaluate(consolePage, `document.getElementById("post-body").value = ${JSON.stringify(posted)}; document.getElementById("post-send").click(); true`);
  assert.match(await devtools.until(consolePage, `document.getElementById("post-result").textContent`, "the post's result"), /^200/);
  await devtools.until(client, `document.getElementById("received").textContent.includes(${JSON.stringify(posted)})`, "the client page to show the posted message");

  // The console's Invoke API form: the responder fans out to the conversation.
  const invoked = `sent by the responder ${Date.now()}`;
  await devtools.evaluate(consolePage, `
    document.getElementById("invoke-function").value = "WebSocketResponder";
    document.getElementById("invoke-conversation").value = "conv-browser";
    document.getElementById("invoke-text").value = ${JSON.stringify(invoked)};
    document.getElementById("invoke-send").click(); true`);
  assert.match(await devtools.until(consolePage, `document.getElementById("invoke-result").textContent`, "the invocation's result"), /^200: /);
  const envelope = await devtools.until(
    client,
    `[...document.querySelectorAll("#received li")].map((li) => li.textContent).find((text) => text.includes(${JSON.stringify(invoked)}))`,
    "the client page to show the responder's message",
  );
  const { stream, offset, epoch, ...original } = JSON.parse(envelope);
  assert.equal(stream, "conv/us-east-1/conv-browser", "a fan-out is streamed");
  assert.ok(Number.isInteger(offset) && typeof epoch === "string");
  assert.deepEqual(original, {
    messageType: "system",
    correlationId: "conv-browser",
    sequence: null,
    isFinal: false,
    payload: { text: invoked },
  });

  // The console shows both messages going out, and the functions' log lines.
  await devtools.until(consolePage, `document.getElementById("messages").textContent.includes(${JSON.stringify(invoked)})`, "the console's message log to show the responder's message");
  await devtools.until(consolePage, `document.getElementById("log").textContent.includes("[WebSocketResponder] REPORT")`, "the console's log stream to show the responder's REPORT line");
  // And the lifecycle event of the client's connection (ws-local reads its table every second).
  await devtools.until(consolePage, `[...document.querySelectorAll("#events tbody tr")].some((row) => row.textContent.includes("Connection opened") && row.textContent.includes("browser-user") && row.textContent.includes("conv-browser"))`, "the console's events to show the client's Connection opened");
  const { data } = await devtools.send("Page.captureScreenshot", { format: "png" }, consolePage);
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  fs.writeFileSync(screenshot, Buffer.from(data, "base64"));
  assert.ok(fs.statSync(screenshot).size > 10_000, "the screenshot holds a rendered page");
});
