// The client's options, events and wire types.

/** A message as the service posts it: the original envelope, plus where it sits in its stream. */
export interface Envelope {
  messageType: string;
  correlationId: string | null;
  sequence: number | null;
  isFinal: boolean;
  payload: unknown;
  messageId?: string;
  /** `conv/<region>/<conversationId>` or `user/<region>/<userId>`; absent on a post to one connection. */
  stream?: string;
  /** Strictly increasing, gap-free within the stream's epoch. */
  offset?: number;
  /** Changes when the stream starts again (after it expired): offsets of another epoch are unrelated. */
  epoch?: string;
}

/** Where the client is in one stream: the epoch and the last offset it delivered. */
export interface StreamPosition {
  stream: string;
  epoch: string | null;
  offset: number;
}

/** The constructor of a standard WebSocket (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Timers, so tests can run the client on a fake clock. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

/** Every option, each with its default. */
export interface ClientOptions {
  /** The WebSocket endpoint, e.g. `wss://abc123.execute-api.eu-west-1.amazonaws.com/prod`. */
  url: string;
  /** The token for each (re)connect; called every time, so an expired token is replaced. Default: none. */
  getToken?: () => string | Promise<string>;
  /** How the token travels: `subprotocol` (`bearer.<token>` next to `protocol`; browsers cannot set headers) or `query` (`?token=`). Default `subprotocol`. */
  tokenTransport?: "subprotocol" | "query";
  /** The application protocol offered with the token (a browser drops a handshake that offers only the token). Default `ws-connection.v1`. */
  protocol?: string;
  /** The conversation to join (`correlationId` on the URL). Default: the service makes one. */
  conversationId?: string;
  /** First reconnect delay's ceiling, ms (full jitter: each delay is random in [0, min(cap, base·2^attempt)]). Default 500. */
  backoffBase?: number;
  /** Largest reconnect delay, ms. Default 20000. */
  backoffCap?: number;
  /** A connection that lived this long (ms) resets the backoff. Default 30000. */
  resetBackoffAfter?: number;
  /** A `ping` every this many ms (API Gateway closes a connection after 10 idle minutes). Default 300000 (5 min). */
  heartbeatInterval?: number;
  /** No `pong` within this many ms: the connection is dead; reconnect. Default 20000. */
  pongTimeout?: number;
  /** Open a new connection (and resume on it) before this age, ms (API Gateway's limit is 2 h). Default 6900000 (1 h 55 min). */
  maxConnectionAge?: number;
  /** The rollover happens up to this many ms earlier, at random, so clients spread out. Default 120000. */
  rolloverJitter?: number;
  /** After each connect, resume once more after this many ms (the fan-out's index may not list a brand-new connection yet). Default 3000. */
  recheckAfter?: number;
  /** A resume not answered within this many ms is sent again. Default 10000. */
  resumeTimeout?: number;
  /** The WebSocket constructor. Default: the global one (pass the `ws` package's in Node 20). */
  WebSocket?: WebSocketConstructor;
  /** Where `online`/`offline` come from. Default: `globalThis` when it is an EventTarget (a browser window). */
  network?: EventTarget | null;
  /** Timers (tests pass a fake clock). Default: the global ones. */
  timers?: Timers;
  /** A number in [0, 1) (tests pass a fixed one). Default `Math.random`. */
  random?: () => number;
}

export type State = "disconnected" | "connecting" | "connected" | "closed";

/** Why the client stopped for good, or is reconnecting. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** True when the client will connect again by itself. */
  reconnect: boolean;
}

/** One page of who is online in the client's conversation (the `presence` route's answer). */
export interface PresenceAnswer {
  type: "presence";
  conversationId: string;
  /** Each user with a live connection there, how many, and since when (the earliest). */
  users: { userId: string; connections: number; since: string }[];
  /** Live connections no user owns (no authorizer ran for them). */
  anonymous?: number;
  /** Present when there is more: pass it to `presence({ cursor })` for the next page. */
  cursor?: string;
}

/** The events a client emits, with their payloads. */
export interface ClientEvents {
  state: { from: State; to: State };
  connecting: { attempt: number; delay: number };
  connected: { protocol: string; rollover: boolean };
  /** A resume answer was applied: per stream, whether nothing was lost. */
  resumed: { streams: { stream: string; recovered: boolean; from: number; to: number; messages: number }[] };
  /** A message, delivered in offset order, once per stream. */
  publication: Envelope;
  /** The service could not give what was missed (the stream expired or started again): re-sync from the application. */
  gap: { stream: string; epoch: string | null; reason: string };
  disconnected: CloseInfo;
  /** The token was refused twice in a row (a 401/403 handshake, where the WebSocket implementation tells). */
  unauthorized: { status: number };
  /** Stopped for good: `close()`, a ban, an expired token the service closed. */
  closed: CloseInfo;
  error: { message: string };
}
