// What the parity suite and the browser test share: a ws-local process on a free port, and
// promise-shaped helpers over the npm `ws` client.

import { spawn } from "node:child_process";
import { after, before } from "node:test";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
export const wsLocalBin = process.env.WS_LOCAL_BIN ?? path.join(target, "debug", "ws-local");

/**
 * Starts `ws-local serve --port 0` with `args` and resolves once it is ready: its base URL, its
 * WebSocket URL, every output line so far (and to come), and `stop()` (Ctrl-C, as a terminal).
 */
export async function startWsLocal(args) {
  const child = spawn(wsLocalBin, ["serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  const waiters = new Set();
  let pending = "";
  const take = (chunk) => {
    pending += chunk;
    let end;
    while ((end = pending.indexOf("\n")) >= 0) {
      lines.push(pending.slice(0, end));
      pending = pending.slice(end + 1);
    }
    for (const waiter of waiters) waiter();
  };
  child.stdout.setEncoding("utf8").on("data", take);
  child.stderr.setEncoding("utf8").on("data", take);
  const exited = new Promise((resolve) => child.on("exit", resolve));

  /** Resolves with the first line matching `pattern` (already printed or to come). */
  const waitForLine = (pattern, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const line = lines.find((l) => pattern.test(l));
        if (line !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(line);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no line matching ${pattern} within ${ms} ms; ws-local said:\n${lines.join("\n")}`));
      }, ms);
      waiters.add(check);
      check();
    });

  const ready = await Promise.race([
    waitForLine(/\[ws-local\] ready: (http:\/\/\S+)/),
    exited.then((code) => {
      throw new Error(`ws-local exited (${code}) before it was ready:\n${lines.join("\n")}`);
    }),
  ]);
  const base = ready.match(/ready: (http:\/\/\S+)/)[1];
  return {
    base,
    websocket: `${base.replace("http://", "ws://")}/local`,
    lines,
    waitForLine,
    async stop() {
      child.kill("SIGINT");
      await exited;
    },
  };
}

/**
 * A ws-local for the enclosing `describe`: started before its tests, stopped after them. The
 * returned object gets `startWsLocal`'s fields once started.
 */
export function useWsLocal(args) {
  const local = {};
  before(async () => Object.assign(local, await startWsLocal(args)));
  after(async () => local.stop?.());
  return local;
}

/**
 * Opens a WebSocket: resolves `{ socket }` once open, or `{ status, body }` when the handshake is
 * refused with an HTTP status.
 */
export function open(url, protocols = [], options = {}) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, options);
    const received = [];
    socket.on("message", (data, isBinary) => received.push(isBinary ? data : data.toString()));
    socket.received = received;
    socket.once("open", () => resolve({ socket }));
    socket.once("unexpected-response", (_request, response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode, body }));
    });
    socket.once("error", (error) => reject(error));
  });
}

/** The next message the socket receives (text), within `ms`. */
export function nextMessage(socket, ms = 10_000) {
  if (socket.received.length) return Promise.resolve(socket.received.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
    socket.once("message", () => {
      clearTimeout(timer);
      resolve(socket.received.shift());
    });
  });
}

/** Resolves `{ code, reason }` when the server closes the socket. */
export function closed(socket, ms = 10_000) {
  return new Promise((resolve, reject) => {
    if (socket.readyState === WebSocket.CLOSED) reject(new Error("already closed"));
    const timer = setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms);
    socket.once("close", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
