// Where the client is in each stream, and the rules that make delivery exactly once and in order
// (docs/design.md §10): the next offset of the known epoch is delivered; an earlier one is a
// duplicate; a later one, or an unknown epoch, asks for a resume; a resume answer that says
// `recovered: false` re-bases the stream on what the service still has (a `gap` for the
// application) and retires the lost epoch, so a late frame of it is never delivered again.

import type { Envelope, StreamPosition } from "./types.js";

/** One stream's part of a resume answer. */
export interface ResumedPart {
  stream: string;
  epoch: string | null;
  recovered: boolean;
  from: number;
  to: number;
  messages: Envelope[];
}

/** What taking a frame or an answer produced. */
export interface Outcome {
  deliver: Envelope[];
  gaps: { stream: string; epoch: string | null; reason: string }[];
  /** A resume is needed (a gap in offsets, an epoch not known, `more`). */
  resume: boolean;
}

export class Streams {
  private readonly positions = new Map<string, { epoch: string | null; offset: number }>();
  private readonly retired = new Map<string, Set<string>>();

  /** The positions to resume from (none yet: the service answers the connection's own streams). */
  list(): StreamPosition[] {
    return [...this.positions].map(([stream, p]) => ({ stream, epoch: p.epoch, offset: p.offset }));
  }

  /** A live envelope. One without stream fields (a post to this connection alone) is delivered as is. */
  take(envelope: Envelope, out: Outcome = { deliver: [], gaps: [], resume: false }): Outcome {
    const { stream, offset, epoch } = envelope;
    if (stream === undefined || offset === undefined || epoch === undefined) {
      out.deliver.push(envelope);
      return out;
    }
    if (this.retired.get(stream)?.has(epoch)) return out;
    const position = this.positions.get(stream);
    if (position === undefined) {
      // The first frame of a stream the client did not know: it starts here.
      this.positions.set(stream, { epoch, offset });
      out.deliver.push(envelope);
    } else if (position.epoch !== null && position.epoch !== epoch) {
      out.resume = true;
    } else if (offset === position.offset + 1) {
      position.epoch = epoch;
      position.offset = offset;
      out.deliver.push(envelope);
    } else if (offset > position.offset + 1) {
      out.resume = true;
    }
    return out;
  }

  /** A resume answer's streams, in order; `more` asks for the rest. */
  apply(parts: ResumedPart[], more: boolean): Outcome {
    const out: Outcome = { deliver: [], gaps: [], resume: more };
    for (const part of parts) {
      const position = this.positions.get(part.stream);
      if (!part.recovered) {
        // Unless the client already moved to that epoch (live frames got there first).
        if (position === undefined || position.epoch === null || position.epoch !== part.epoch) {
          if (position?.epoch) this.retire(part.stream, position.epoch);
          out.gaps.push({ stream: part.stream, epoch: part.epoch, reason: "the stream no longer has what came after your position" });
          const first = part.messages[0]?.offset ?? part.to + 1;
          this.positions.set(part.stream, { epoch: part.epoch, offset: first - 1 });
        }
      } else if (position === undefined) {
        this.positions.set(part.stream, { epoch: part.epoch, offset: part.from - 1 });
      }
      for (const message of part.messages) this.take(message, out);
      const now = this.positions.get(part.stream);
      if (part.recovered && now !== undefined && (now.epoch === null || now.epoch === part.epoch)) {
        now.epoch = part.epoch;
        now.offset = Math.max(now.offset, part.to);
      }
    }
    return out;
  }

  private retire(stream: string, epoch: string): void {
    const set = this.retired.get(stream) ?? new Set<string>();
    set.add(epoch);
    this.retired.set(stream, set);
  }
}
