#!/usr/bin/env node
// ws-connection-tail: follows a conversation through @ws-connection/client, as wscat is to ws.
// Each delivered message is one JSON line on stdout (the envelope: stream, offset, epoch); each
// event (connected, resumed, gap, reconnecting, closed) one JSON line on stderr. It exits 0 on
// Ctrl-C, and 1 with the reason when the service stops it for good (a ban, an expired token,
// a token refused twice).
//
//   node clients/js/bin/ws-connection-tail.js --url ws://127.0.0.1:3001/local --token TOKEN --conversation conv-demo
//   node clients/js/bin/ws-connection-tail.js --url wss://… --token-command 'ws-local token --sub alice'

import { execSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

// Node 20 has a standard WebSocket behind a flag (Node 22 by default): no runtime dependency.
if (typeof globalThis.WebSocket === "undefined") {
  const child = spawn(process.execPath, ["--experimental-websocket", "--no-warnings", fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

function usage(problem) {
  if (problem) process.stderr.write(`ws-connection-tail: ${problem}\n`);
  process.stderr.write(
    "Usage: ws-connection-tail --url WS_URL [--token TOKEN | --token-command 'CMD'] [--conversation ID]\n" +
      "                          [--token-in query|subprotocol] [--heartbeat SECONDS] [--max-age SECONDS]\n" +
      "                          [--backoff-cap SECONDS] [--count N]\n" +
      "Prints each message as a JSON line on stdout, events on stderr; --count N exits 0 after N messages.\n",
  );
  process.exit(2);
}

async function main() {
  let args;
  try {
    args = parseArgs({
      options: {
        url: { type: "string" },
        token: { type: "string" },
        "token-command": { type: "string" },
        "token-in": { type: "string", default: "subprotocol" },
        conversation: { type: "string" },
        heartbeat: { type: "string" },
        "max-age": { type: "string" },
        "backoff-cap": { type: "string" },
        count: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    usage(err.message);
  }
  if (args.help) usage();
  if (!args.url) usage("--url is required (the WebSocket endpoint, ws:// or wss://)");
  if (args.token && args["token-command"]) usage("give --token or --token-command, not both");
  if (!["query", "subprotocol"].includes(args["token-in"])) usage("--token-in is query or subprotocol");
  const seconds = (name) => {
    if (args[name] === undefined) return undefined;
    const value = Number(args[name]);
    if (!Number.isFinite(value) || value <= 0) usage(`--${name} must be a positive number of seconds`);
    return value * 1000;
  };
  const count = args.count === undefined ? undefined : Number(args.count);
  if (count !== undefined && !(Number.isInteger(count) && count > 0)) usage("--count must be a positive whole number");

  const { Client } = await import("../dist/src/index.js");
  const getToken = args["token-command"]
    ? () => execSync(args["token-command"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim()
    : args.token
      ? () => args.token
      : undefined;
  const event = (name, detail) => process.stderr.write(`${JSON.stringify({ event: name, ...detail })}\n`);
  let client;
  try {
    client = new Client({
      url: args.url,
      getToken,
      tokenTransport: args["token-in"],
      conversationId: args.conversation,
      heartbeatInterval: seconds("heartbeat"),
      maxConnectionAge: seconds("max-age"),
      backoffCap: seconds("backoff-cap"),
      rolloverJitter: seconds("max-age") === undefined ? undefined : Math.min(seconds("max-age") / 10, 120_000),
    });
  } catch (err) {
    usage(err.message);
  }
  let delivered = 0;
  client.on("publication", (envelope) => {
    process.stdout.write(`${JSON.stringify(envelope)}\n`);
    delivered += 1;
    if (count !== undefined && delivered >= count) {
      client.close();
      process.exit(0);
    }
  });
  client.on("connected", ({ rollover }) => event("connected", { rollover }));
  client.on("resumed", ({ streams }) => event("resumed", { streams }));
  client.on("gap", (gap) => event("gap", gap));
  client.on("connecting", ({ attempt, delay }) => attempt > 0 && event("reconnecting", { attempt, delay }));
  client.on("disconnected", (info) => event("disconnected", info));
  client.on("unauthorized", (info) => event("unauthorized", info));
  client.on("error", (info) => event("error", info));
  client.on("closed", (info) => {
    event("closed", info);
    if (!stopping) {
      process.stderr.write(`ws-connection-tail: stopped: ${info.code} ${info.reason}\n`);
      process.exit(1);
    }
  });
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      stopping = true;
      client.close();
      process.exit(0);
    });
  }
  client.connect();
}
