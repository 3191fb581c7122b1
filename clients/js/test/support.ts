// A fake clock and a fake WebSocket the tests drive by hand, as the server and the network would.

import type { Timers, WebSocketLike } from "../src/types.js";

export class FakeClock implements Timers {
  private time = 0;
  private next = 1;
  private readonly queue = new Map<number, { at: number; run: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.next++;
    this.queue.set(id, { at: this.time + ms, run: callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.queue.delete(handle as number);
  }

  /** Moves time forward, running each timer due on the way, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      let first: [number, { at: number; run: () => void }] | undefined;
      for (const entry of this.queue) if (entry[1].at <= until && (!first || entry[1].at < first[1].at)) first = entry;
      if (!first) break;
      this.queue.delete(first[0]);
      this.time = first[1].at;
      first[1].run();
    }
    this.time = until;
  }
}

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  protocol = "";
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedBy: { code?: number; reason?: string } | null = null;

  constructor(readonly url: string, readonly protocols?: string | string[]) {
    FakeSocket.all.push(this);
  }

  static reset(): void {
    FakeSocket.all = [];
  }

  static last(): FakeSocket {
    const socket = FakeSocket.all.at(-1);
    if (!socket) throw new Error("no socket was opened");
    return socket;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number, reason?: string): void {
    this.closedBy = { code, reason };
    this.readyState = 3;
    this.onclose?.({ code: code ?? 1005, reason: reason ?? "" });
  }

  // What the server and the network do:
  open(protocol = "ws-connection.v1"): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }

  receive(value: unknown): void {
    this.onmessage?.({ data: JSON.stringify(value) });
  }

  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  refuse(status: number): void {
    this.onerror?.({ message: `Unexpected server response: ${status}` });
    this.drop(1006, "");
  }

  resumes(): Record<string, unknown>[] {
    return this.sent.filter((m) => m.action === "resume");
  }
}

export const STREAM = "conv/us-east-1/c1";

export function envelope(offset: number, epoch = "e1", stream = STREAM) {
  return { messageType: "m", correlationId: null, sequence: offset, isFinal: false, payload: { n: offset }, stream, offset, epoch };
}

export function resumed(parts: { epoch?: string | null; recovered?: boolean; from: number; to: number; offsets?: number[]; stream?: string }[], more = false) {
  return {
    type: "resumed",
    ...(more ? { more: true } : {}),
    streams: parts.map((p) => ({
      stream: p.stream ?? STREAM,
      epoch: p.epoch === undefined ? "e1" : p.epoch,
      recovered: p.recovered ?? true,
      from: p.from,
      to: p.to,
      messages: (p.offsets ?? []).map((o) => envelope(o, p.epoch ?? "e1", p.stream ?? STREAM)),
    })),
  };
}

/** Lets promises (getToken) settle. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

import { Client } from "../src/client.js";
import type { ClientOptions, Envelope } from "../src/types.js";

export interface Seen {
  publications: Envelope[];
  gaps: { stream: string; epoch: string | null }[];
  log: string[];
}

/** A client on the fake clock and sockets, connected (its first socket created, not yet open). */
export async function start(options: Partial<ClientOptions> = {}) {
  FakeSocket.reset();
  const clock = new FakeClock();
  const tokens: string[] = [];
  let n = 0;
  const client = new Client({
    url: "ws://127.0.0.1:9/local",
    WebSocket: FakeSocket,
    timers: clock,
    random: () => 0.5,
    network: null,
    getToken: () => {
      n += 1;
      tokens.push(`t${n}`);
      return `t${n}`;
    },
    ...options,
  });
  const seen: Seen = { publications: [], gaps: [], log: [] };
  client.on("publication", (e) => seen.publications.push(e));
  client.on("gap", (g) => seen.gaps.push(g));
  for (const event of ["connecting", "connected", "disconnected", "closed", "unauthorized"] as const) {
    client.on(event, (payload) => seen.log.push(`${event} ${JSON.stringify(payload)}`));
  }
  client.connect();
  await settle();
  return { client, clock, seen, tokens };
}

export function offsets(seen: Seen): number[] {
  return seen.publications.map((p) => p.offset ?? -1);
}
