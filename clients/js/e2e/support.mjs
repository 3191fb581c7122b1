// What the client's end-to-end test and benchmark share: a ws-local with its own table on moto,
// and a page (with the library) served from one origin for headless Chromium.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { root, startWsLocal } from "../../../local/parity/support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");

/** A ws-local (the project's manifest, the debug binaries) on a fresh table in DYNAMODB_ENDPOINT's moto. */
export async function startStack(args = []) {
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  assert.ok(endpoint, "DYNAMODB_ENDPOINT is not set: run scripts/test.sh, which starts moto and sets it");
  const table = `client-e2e-${Date.now()}`;
  const python = fs.existsSync(path.join(root, ".venv", "bin", "python")) ? path.join(root, ".venv", "bin", "python") : "python3";
  const created = spawnSync(python, [path.join(root, "scripts", "local_table.py"), "--endpoint", endpoint, "--name", table]);
  assert.equal(created.status, 0, `could not create the table: ${created.stderr}`);
  return startWsLocal([
    "--manifest", path.join(root, "lambda.manifest.json"),
    "--bin-dir", path.join(target, "debug"),
    "--table", table,
    "--dynamodb-endpoint", endpoint,
    "--sweep-every", "0",
    ...args,
  ]);
}

/** Serves `html` at / with the library under /dist and a token of `sub` at /token; resolves the server. */
export async function servePage(local, html, sub) {
  const token = async () => (await (await fetch(`${local.base}/issuer/token`, { method: "POST", body: JSON.stringify({ sub }) })).json()).token;
  const server = http.createServer(async (req, res) => {
    if (req.url === "/") return res.writeHead(200, { "content-type": "text/html" }).end(html);
    if (req.url === "/token") return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: await token() }));
    const file = path.join(here, "..", req.url.split("?")[0]);
    if (!file.startsWith(path.join(here, "..", "dist")) || !fs.existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/javascript" }).end(fs.readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.url = `http://127.0.0.1:${server.address().port}/`;
  return server;
}

/** The open connections of `user`, from ws-local's console. */
export async function openConnectionsOf(local, user) {
  const state = await (await fetch(`${local.base}/_console/api/state`)).json();
  return state.connections.filter((c) => c.user === user).map((c) => c.connectionId);
}

/** Cuts a connection as a network would (202), through ws-local's console. */
export async function drop(local, id) {
  return (await fetch(`${local.base}/_console/api/connections/${encodeURIComponent(id)}/drop`, { method: "POST" })).status;
}
