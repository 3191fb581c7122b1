// Headless Chromium driven over the DevTools protocol with the `ws` client: the parity suite's
// console test and the client library's browser test (clients/js/e2e) share it.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A DevTools protocol client over one browser connection; commands go to a target's session. */
export class DevTools {
  static async connect(url) {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    return new DevTools(socket);
  }

  constructor(socket) {
    this.socket = socket;
    this.next = 1;
    this.pending = new Map();
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString());
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
  }

  send(method, params = {}, sessionId = undefined) {
    const id = this.next++;
    this.socket.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
  }

  /** Opens `url` in a new tab; resolves its session id. */
  async open(url) {
    const { targetId } = await this.send("Target.createTarget", { url });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    return sessionId;
  }

  /** Evaluates `expression` in the tab and resolves its value. */
  async evaluate(sessionId, expression) {
    const { result, exceptionDetails } = await this.send(
      "Runtime.evaluate",
      { expression, awaitPromise: true, returnByValue: true },
      sessionId,
    );
    if (exceptionDetails) throw new Error(`${expression}: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value;
  }

  /** Polls `expression` in the tab until it is truthy (its value), for at most `ms`. */
  async until(sessionId, expression, what, ms = 15_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await this.evaluate(sessionId, expression).catch(() => undefined);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${expression})`);
      await sleep(100);
    }
  }
}


/** Starts `chromium` headless with a fresh profile; resolves the process, a DevTools client and the profile folder. */
export async function startChromium(chromium) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ws-local-chromium-"));
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start. The background-networking
  // flags keep it from calling out (this machine's network is closed).
  const browser = spawn(chromium, [
    "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--window-size=1280,900", "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  const devtoolsUrl = await new Promise((resolve, reject) => {
    let said = "";
    const timer = setTimeout(() => reject(new Error(`Chromium did not start its DevTools endpoint:\n${said}`)), 20_000);
    browser.stderr.setEncoding("utf8").on("data", (chunk) => {
      said += chunk;
      const found = said.match(/DevTools listening on (ws:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    browser.once("exit", (code) => reject(new Error(`Chromium exited (${code}):\n${said}`)));
  });
  return { browser, devtools: await DevTools.connect(devtoolsUrl), profile };
}
