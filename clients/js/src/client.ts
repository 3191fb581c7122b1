// The client: an explicit state machine (disconnected → connecting → connected, closed for good)
// around one WebSocket at a time (two during a rollover), that keeps a conversation whole across
// the reconnects API Gateway forces (10 idle minutes, 2 hours, every network change).
//
// - Every (re)connect asks getToken() again and sends it the way the authorizer reads it.
// - A drop reconnects after a full-jitter backoff; a close by the service for a ban or an
//   expired token (1000 "Connection deleted") stops; a refused handshake (401/403, where the
//   WebSocket implementation tells) asks for a token once more, then stops with `unauthorized`.
// - A heartbeat (`ping`, answered by API Gateway itself) keeps an idle connection open and
//   detects a dead one (no `pong`).
// - Before the 2-hour limit a second connection opens, resumes, and only then the first closes.
// - After every connect the client resumes its streams (docs/design.md §10), and once more a
//   moment later; a gap in offsets resumes again; one resume is in flight at a time.

import { backoff } from "./backoff.js";
import { Streams } from "./streams.js";
import type { Outcome, ResumedPart } from "./streams.js";
import type {
  ClientEvents,
  ClientOptions,
  CloseInfo,
  Envelope,
  PresenceAnswer,
  State,
  StreamPosition,
  Timers,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

/** The close API Gateway sends when the service deletes a connection (a ban, an expired token). */
const DELETED = "Connection deleted";

type Listener<K extends keyof ClientEvents> = (payload: ClientEvents[K]) => void;

const defaultTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/** A `presence()` call waiting for its answer. */
interface PresenceWaiter {
  resolve: (answer: PresenceAnswer) => void;
  reject: (err: Error) => void;
  timer: unknown;
  /** Where it was asked, and what (asked again on the new connection of a rollover). */
  transport: Transport;
  question: string;
}

/** One connection attempt. */
interface Transport {
  ws: WebSocketLike;
  opened: boolean;
  openedAt: number;
  rollover: boolean;
  /** Closed by the client itself (rolled over, `close()`): its close event means nothing. */
  retired: boolean;
  /** The handshake's HTTP status, when the WebSocket implementation reported one. */
  refused?: number;
}

export class Client {
  private readonly options: Required<Omit<ClientOptions, "getToken" | "conversationId" | "network" | "WebSocket">> &
    Pick<ClientOptions, "getToken" | "conversationId">;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly network: EventTarget | null;
  private readonly timers: Timers;
  private readonly streams = new Streams();
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<keyof ClientEvents>>>();
  private stateValue: State = "disconnected";
  private current: Transport | null = null;
  private rolling: Transport | null = null;
  private attempt = 0;
  private refusals = 0;
  private offline = false;
  private resumeOn: Transport | null = null;
  private resumeAgain = false;
  /** `presence()` calls waiting for their answer, oldest first: each on the connection it asked on
   * (the route answers each connection's questions in order). */
  private presenceWaiters: PresenceWaiter[] = [];
  private readonly timer: Record<"reconnect" | "heartbeat" | "pong" | "rollover" | "recheck" | "retryResume" | "resumeTimeout", unknown> = {
    reconnect: undefined,
    heartbeat: undefined,
    pong: undefined,
    rollover: undefined,
    recheck: undefined,
    retryResume: undefined,
    resumeTimeout: undefined,
  };
  private readonly onOnline = () => this.networkUp();
  private readonly onOffline = () => this.networkDown();

  constructor(options: ClientOptions) {
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new Error("no WebSocket here: pass options.WebSocket (in Node 20, the ws package's: import WebSocket from \"ws\")");
    }
    if (!/^wss?:\/\//.test(options.url)) {
      throw new Error(`url must be a ws:// or wss:// endpoint, e.g. wss://abc123.execute-api.eu-west-1.amazonaws.com/prod (got ${JSON.stringify(options.url)})`);
    }
    this.WebSocketImpl = WebSocketImpl;
    this.timers = options.timers ?? defaultTimers;
    const fallbackNetwork = typeof (globalThis as { addEventListener?: unknown }).addEventListener === "function" && "navigator" in globalThis
      ? (globalThis as unknown as EventTarget)
      : null;
    this.network = options.network === undefined ? fallbackNetwork : options.network;
    this.options = {
      url: options.url,
      getToken: options.getToken,
      conversationId: options.conversationId,
      tokenTransport: options.tokenTransport ?? "subprotocol",
      protocol: options.protocol ?? "ws-connection.v1",
      backoffBase: options.backoffBase ?? 500,
      backoffCap: options.backoffCap ?? 20_000,
      resetBackoffAfter: options.resetBackoffAfter ?? 30_000,
      heartbeatInterval: options.heartbeatInterval ?? 300_000,
      pongTimeout: options.pongTimeout ?? 20_000,
      maxConnectionAge: options.maxConnectionAge ?? 6_900_000,
      rolloverJitter: options.rolloverJitter ?? 120_000,
      recheckAfter: options.recheckAfter ?? 3_000,
      resumeTimeout: options.resumeTimeout ?? 10_000,
      timers: this.timers,
      random: options.random ?? Math.random,
    };
  }

  get state(): State {
    return this.stateValue;
  }

  private isClosed(): boolean {
    return this.stateValue === "closed";
  }

  /** Where the client is in each stream it follows. */
  positions(): StreamPosition[] {
    return this.streams.list();
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener as Listener<keyof ClientEvents>);
    this.listeners.set(event, set);
    return () => set.delete(listener as Listener<keyof ClientEvents>);
  }

  /** Connects (and keeps reconnecting) until `close()` or a close by the service for good. */
  connect(): void {
    if (this.stateValue !== "disconnected") return;
    this.network?.addEventListener("online", this.onOnline);
    this.network?.addEventListener("offline", this.onOffline);
    void this.open(false);
  }

  /**
   * Who is online in the client's conversation, a page at a time (the `presence` route; pass the
   * answer's `cursor` for the next page). Rejects when the client is not connected, when the
   * service refuses (it says why), or with no answer within `timeout` ms.
   */
  presence(options: { cursor?: string; timeout?: number } = {}): Promise<PresenceAnswer> {
    const transport = this.current;
    if (transport === null || !transport.opened || this.isClosed()) {
      return Promise.reject(new Error(`not connected (${this.stateValue}): ask for presence once the client emitted "connected"`));
    }
    const question = JSON.stringify(options.cursor === undefined ? { action: "presence" } : { action: "presence", cursor: options.cursor });
    return new Promise((resolve, reject) => {
      const waiter: PresenceWaiter = { resolve, reject, timer: undefined, transport, question };
      waiter.timer = this.timers.setTimeout(() => {
        this.presenceWaiters = this.presenceWaiters.filter((w) => w !== waiter);
        reject(new Error(`no presence answer within ${options.timeout ?? 10_000} ms`));
      }, options.timeout ?? 10_000);
      this.presenceWaiters.push(waiter);
      transport.ws.send(question);
    });
  }

  /** The waiting `presence()` calls asked on `transport` (all when none is named), no longer
   * waiting: the oldest alone when `first`. */
  private takePresenceWaiters(transport: Transport | null, first: boolean): PresenceWaiter[] {
    const taken: PresenceWaiter[] = [];
    this.presenceWaiters = this.presenceWaiters.filter((w) => {
      const take = (transport === null || w.transport === transport) && !(first && taken.length > 0);
      if (take) {
        this.timers.clearTimeout(w.timer);
        taken.push(w);
      }
      return !take;
    });
    return taken;
  }

  /** Ends everything: the socket closes (1000) and nothing reconnects. */
  close(): void {
    this.stop({ code: 1000, reason: "closed by the application", reconnect: false });
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(payload);
      } catch (err) {
        if (event !== "error") this.emit("error", { message: `a ${event} listener threw: ${String(err)}` });
      }
    }
  }

  private setState(to: State): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.emit("state", { from, to });
  }

  private clear(name: keyof Client["timer"]): void {
    if (this.timer[name] !== undefined) this.timers.clearTimeout(this.timer[name]);
    this.timer[name] = undefined;
  }

  private after(name: keyof Client["timer"], ms: number, run: () => void): void {
    this.clear(name);
    this.timer[name] = this.timers.setTimeout(() => {
      this.timer[name] = undefined;
      run();
    }, Math.max(0, ms));
  }

  private async open(rollover: boolean): Promise<void> {
    if (this.stateValue === "closed") return;
    if (!rollover) this.setState("connecting");
    let token: string | undefined;
    try {
      token = this.options.getToken ? await this.options.getToken() : undefined;
    } catch (err) {
      this.emit("error", { message: `getToken failed: ${String(err)}` });
      if (!rollover) this.scheduleReconnect();
      return;
    }
    // close() may have come while the token was awaited.
    if (this.isClosed()) return;
    const url = new URL(this.options.url);
    if (this.options.conversationId) url.searchParams.set("correlationId", this.options.conversationId);
    const protocols = [this.options.protocol];
    if (token !== undefined && this.options.tokenTransport === "query") url.searchParams.set("token", token);
    if (token !== undefined && this.options.tokenTransport === "subprotocol") protocols.push(`bearer.${token}`);
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(url.toString(), protocols);
    } catch (err) {
      this.emit("error", { message: `could not open a WebSocket: ${String(err)}` });
      if (!rollover) this.scheduleReconnect();
      return;
    }
    const transport: Transport = { ws, opened: false, openedAt: 0, rollover, retired: false };
    if (rollover) this.rolling = transport;
    else this.current = transport;
    ws.onopen = () => this.opened(transport);
    ws.onmessage = (event) => this.frame(transport, event.data);
    ws.onerror = (event) => {
      const text = String((event as { message?: string })?.message ?? (event as { error?: unknown })?.error ?? "");
      const status = /Unexpected server response: (\d{3})/.exec(text);
      if (status) transport.refused = Number(status[1]);
    };
    ws.onclose = (event) => this.closed(transport, event.code, event.reason ?? "");
  }

  private opened(transport: Transport): void {
    if (transport.retired || this.stateValue === "closed") return;
    transport.opened = true;
    transport.openedAt = this.timers.now();
    this.refusals = 0;
    if (!transport.rollover) {
      this.setState("connected");
      this.startHeartbeat();
      this.scheduleRollover();
    }
    this.emit("connected", { protocol: transport.ws.protocol, rollover: transport.rollover });
    this.resume(transport);
    if (!transport.rollover) this.after("recheck", this.options.recheckAfter, () => this.resume(this.target()));
  }

  private frame(transport: Transport, data: unknown): void {
    if (transport.retired) return;
    let value: Record<string, unknown>;
    try {
      const text = typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer);
      value = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.emit("error", { message: "a frame that is not JSON was ignored" });
      return;
    }
    if (value.type === "pong") {
      this.clear("pong");
      return;
    }
    if (value.type === "resumed") {
      this.resumed(transport, value);
      return;
    }
    if (value.type === "presence") {
      this.takePresenceWaiters(transport, true)[0]?.resolve(value as unknown as PresenceAnswer);
      return;
    }
    if (value.type === "error" && value.action === "presence") {
      this.takePresenceWaiters(transport, true)[0]?.reject(new Error(`the service refused presence: ${String(value.error)}`));
      return;
    }
    if (value.type === "error") {
      this.emit("error", { message: `the service refused ${String(value.action)}: ${String(value.error)}` });
      if (value.action === "resume" && this.resumeOn === transport) {
        this.resumeOn = null;
        this.clear("resumeTimeout");
        this.after("retryResume", backoff(1, this.options.backoffBase, this.options.backoffCap, this.options.random) + 1000, () =>
          this.resume(this.target()),
        );
      }
      return;
    }
    if (typeof value.messageType === "string") this.deliver(this.streams.take(value as unknown as Envelope));
  }

  private resumed(transport: Transport, answer: Record<string, unknown>): void {
    if (this.resumeOn === transport) {
      this.resumeOn = null;
      this.clear("resumeTimeout");
    }
    const parts = (answer.streams as ResumedPart[] | undefined) ?? [];
    const outcome = this.streams.apply(parts, answer.more === true);
    this.emit("resumed", {
      streams: parts.map((p) => ({ stream: p.stream, recovered: p.recovered, from: p.from, to: p.to, messages: p.messages.length })),
    });
    this.deliver(outcome);
    if (transport === this.rolling) this.finishRollover(transport);
    if (this.resumeAgain) {
      this.resumeAgain = false;
      this.resume(this.target());
    }
  }

  /** Where a resume goes: the rollover's new connection once it is open, else the connection. */
  private target(): Transport | null {
    return this.rolling?.opened ? this.rolling : this.current;
  }

  private deliver(outcome: Outcome): void {
    for (const gap of outcome.gaps) this.emit("gap", gap);
    for (const envelope of outcome.deliver) this.emit("publication", envelope);
    if (outcome.resume) this.resume(this.target());
  }

  /** Asks for what the client's streams got since its positions; one resume in flight at a time. */
  private resume(transport: Transport | null): void {
    if (transport === null || !transport.opened || transport.retired) return;
    if (this.resumeOn !== null) {
      this.resumeAgain = true;
      return;
    }
    const streams = this.streams.list();
    const request = streams.length === 0
      ? { action: "resume" }
      : { action: "resume", streams: streams.map((s) => ({ stream: s.stream, offset: s.offset, epoch: s.epoch })) };
    try {
      transport.ws.send(JSON.stringify(request));
      this.resumeOn = transport;
      // An answer that never comes (a lost frame, a function that timed out) must not block resumes.
      this.after("resumeTimeout", this.options.resumeTimeout, () => {
        if (this.resumeOn !== transport) return;
        this.resumeOn = null;
        this.resume(this.target());
      });
    } catch (err) {
      this.emit("error", { message: `could not send resume: ${String(err)}` });
    }
  }

  private startHeartbeat(): void {
    this.after("heartbeat", this.options.heartbeatInterval, () => {
      const transport = this.current;
      if (transport === null || !transport.opened) return;
      try {
        transport.ws.send(JSON.stringify({ action: "ping" }));
      } catch {
        // The close event follows.
      }
      this.after("pong", this.options.pongTimeout, () => {
        // No answer: the connection is dead even if no close event says so yet.
        if (this.current === transport) transport.ws.close(4000, "no pong");
      });
      this.startHeartbeat();
    });
  }

  private scheduleRollover(): void {
    const { maxConnectionAge, rolloverJitter, random } = this.options;
    this.after("rollover", maxConnectionAge - random() * rolloverJitter, () => {
      if (this.current !== null && this.rolling === null && this.stateValue === "connected") void this.open(true);
    });
  }

  /** The new connection has resumed: it takes over, the old one closes. */
  private finishRollover(transport: Transport): void {
    const old = this.current;
    this.rolling = null;
    this.current = transport;
    transport.rollover = false;
    if (old) {
      this.askPresenceAgain(old, transport);
      old.retired = true;
      old.ws.close(1000, "rollover");
    }
    this.startHeartbeat();
    this.scheduleRollover();
  }

  /** `presence()` calls asked on `from`, which is going: asked again on `to`, which serves now. */
  private askPresenceAgain(from: Transport, to: Transport): void {
    for (const waiter of this.presenceWaiters) {
      if (waiter.transport !== from) continue;
      waiter.transport = to;
      to.ws.send(waiter.question);
    }
  }

  private closed(transport: Transport, code: number, reason: string): void {
    if (transport.retired || this.stateValue === "closed") return;
    if (transport === this.resumeOn) {
      this.resumeOn = null;
      this.clear("resumeTimeout");
      if (this.resumeAgain) {
        this.resumeAgain = false;
        if (transport !== this.target()) this.resume(this.target());
      }
    }
    if (transport === this.rolling) {
      // The new connection of a rollover failed: the old one still serves; try again later.
      this.rolling = null;
      this.after("rollover", backoff(this.attempt, this.options.backoffBase, this.options.backoffCap, this.options.random) + 1000, () => {
        if (this.current !== null && this.rolling === null) void this.open(true);
      });
      return;
    }
    if (transport !== this.current) return;
    this.current = null;
    // Its presence questions: asked again on the rollover's connection when one is open, else
    // refused (a reconnect may take long; the caller asks again once connected).
    if (this.rolling?.opened) this.askPresenceAgain(transport, this.rolling);
    for (const waiter of this.takePresenceWaiters(transport, false)) {
      waiter.reject(new Error(`the connection closed (${code}) before the presence answer: ask again once connected`));
    }
    for (const name of ["heartbeat", "pong", "rollover", "recheck", "retryResume", "resumeTimeout"] as const) this.clear(name);
    // Deleted by the service (a ban, an expired token): over, whatever is opening beside it.
    if (code === 1000 && reason === DELETED) {
      this.stop({ code, reason, reconnect: false });
      return;
    }
    if (this.rolling) {
      // The old one dropped mid-rollover: the new one becomes the connection.
      const next = this.rolling;
      this.rolling = null;
      this.current = next;
      next.rollover = false;
      if (next.opened) {
        this.startHeartbeat();
        this.scheduleRollover();
        return;
      }
      // It is still opening: it is the reconnect. Opening another beside it would leave one of
      // the two connected and unwatched; if it fails, its close is the connection's and reconnects.
      this.emit("disconnected", { code, reason, reconnect: true });
      this.setState("connecting");
      return;
    }
    if (!transport.opened && (transport.refused === 401 || transport.refused === 403)) {
      this.refusals += 1;
      if (this.refusals >= 2) {
        this.emit("unauthorized", { status: transport.refused });
        this.stop({ code, reason: `the handshake was refused (${transport.refused}) with a fresh token`, reconnect: false });
        return;
      }
      // Once more at once, with a token getToken() gives again.
      this.emit("disconnected", { code, reason, reconnect: true });
      this.setState("disconnected");
      void this.open(false);
      return;
    }
    if (transport.opened && this.timers.now() - transport.openedAt >= this.options.resetBackoffAfter) this.attempt = 0;
    this.emit("disconnected", { code, reason, reconnect: true });
    this.setState("disconnected");
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stateValue === "closed") return;
    this.setState("disconnected");
    if (this.offline) return; // `online` reconnects
    const delay = backoff(this.attempt, this.options.backoffBase, this.options.backoffCap, this.options.random);
    this.attempt += 1;
    this.emit("connecting", { attempt: this.attempt, delay });
    this.after("reconnect", delay, () => void this.open(false));
  }

  private networkUp(): void {
    this.offline = false;
    if (this.stateValue === "closed" || this.current !== null) return;
    this.clear("reconnect");
    this.attempt = 0;
    this.emit("connecting", { attempt: 0, delay: 0 });
    void this.open(false);
  }

  private networkDown(): void {
    this.offline = true;
    this.clear("reconnect");
    const transport = this.current;
    if (transport) transport.ws.close(4000, "offline");
  }

  private stop(info: CloseInfo): void {
    if (this.stateValue === "closed") return;
    for (const name of Object.keys(this.timer) as (keyof Client["timer"])[]) this.clear(name);
    for (const transport of [this.current, this.rolling]) {
      if (transport && !transport.retired) {
        transport.retired = true;
        try {
          transport.ws.close(1000, "closed");
        } catch {
          // Already closing.
        }
      }
    }
    this.current = null;
    this.rolling = null;
    for (const waiter of this.takePresenceWaiters(null, false)) waiter.reject(new Error(`the client stopped: ${info.reason}`));
    this.network?.removeEventListener("online", this.onOnline);
    this.network?.removeEventListener("offline", this.onOffline);
    this.setState("closed");
    this.emit("closed", info);
  }
}
