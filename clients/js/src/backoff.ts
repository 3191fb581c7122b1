// Reconnect delays: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
// Backoff and Jitter"): each delay is uniformly random in [0, min(cap, base * 2^attempt)], so
// clients that lost their connections together do not come back together (API Gateway admits 500
// new connections per second per account and region).

/** The delay before reconnect `attempt` (0 for the first), in ms. `random` is in [0, 1). */
export function backoff(attempt: number, base: number, cap: number, random: () => number): number {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
