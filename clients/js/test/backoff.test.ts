import assert from "node:assert/strict";
import { test } from "node:test";

import { backoff } from "../src/backoff.js";

test("each delay is random within zero and the exponential ceiling, capped", () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(20_000, 500 * 2 ** attempt);
    assert.equal(backoff(attempt, 500, 20_000, () => 0), 0);
    assert.ok(backoff(attempt, 500, 20_000, () => 0.999999) < ceiling);
    assert.ok(backoff(attempt, 500, 20_000, () => 0.999999) >= ceiling * 0.99);
  }
  assert.equal(backoff(100, 500, 20_000, () => 0.5), 10_000, "a huge attempt stays at the cap");
});

test("full jitter spreads clients that lost their connections together", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const delays = Array.from({ length: 1000 }, () => backoff(5, 500, 20_000, random));
  const buckets = new Array(10).fill(0);
  for (const d of delays) buckets[Math.floor(d / 1600)] += 1;
  // 1,000 clients over [0, 16 s): no tenth of the window holds more than a fifth of them.
  assert.ok(Math.max(...buckets) < 200, JSON.stringify(buckets));
  assert.ok(Math.min(...buckets) > 50, JSON.stringify(buckets));
});
