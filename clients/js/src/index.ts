// @ws-connection/client: the client of ws-connection (docs/client.md in the repository).
export { Client } from "./client.js";
export { backoff } from "./backoff.js";
export { Streams } from "./streams.js";
export type { Outcome, ResumedPart } from "./streams.js";
export type {
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
