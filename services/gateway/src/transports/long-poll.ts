/**
 * Long polling: `GET /v1/poll?channel=<ch>&cursor=<cursor>&timeout=<s>` is held until the channel
 * has a message after the cursor or the timeout passes (default 25 s, at most 60), and answers
 * `{"messages": [...], "cursor": "<next cursor>"}` (empty at the timeout). Without a cursor it
 * waits for the next message. A held poll is a small record in memory, not a thread.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { parsePosition } from '@fanout/protocol';
import type { Outgoing } from '../delivery/outgoing.js';
import { authorize, intParam, rangeBody, readRequest, readSince, Reply, requireChannel, type PullDeps, queryParam } from './http-common.js';

interface Waiter {
  reply: Reply;
  cursor: string;
  /** The cursor's offset: messages at or before it are the poller's already (a cursor ahead of this gateway). */
  after: number;
  pending: Outgoing[];
  timer: NodeJS.Timeout;
  limit: number;
}

export class LongPollers {
  private readonly byChannel = new Map<string, Set<Waiter>>();
  private readonly ready = new Set<Waiter>();
  private scheduled = false;

  get count(): number {
    let n = 0;
    for (const s of this.byChannel.values()) n += s.size;
    return n;
  }

  add(channel: string, w: Waiter): void {
    let set = this.byChannel.get(channel);
    if (!set) this.byChannel.set(channel, (set = new Set()));
    set.add(w);
  }

  remove(channel: string, w: Waiter): void {
    const set = this.byChannel.get(channel);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.byChannel.delete(channel);
  }

  /** Whether a long poll waits on the channel (a message for it must be built to answer it). */
  waiting(channel: string): boolean {
    return this.byChannel.has(channel);
  }

  /** A new message: every poller of its channel is answered (after this turn, with all that came). */
  notify(o: Outgoing): void {
    const set = this.byChannel.get(o.channel);
    if (!set) return;
    for (const w of set) {
      if (o.offset <= w.after) continue;
      if (w.pending.length < w.limit) w.pending.push(o);
      this.ready.add(w);
      set.delete(w);
    }
    if (set.size === 0) this.byChannel.delete(o.channel);
    if (this.ready.size > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        for (const w of this.ready) {
          clearTimeout(w.timer);
          const last = w.pending[w.pending.length - 1]!;
          w.reply.json(200, rangeBody({ messages: w.pending, cursor: last.position }));
        }
        this.ready.clear();
      });
    }
  }

  /** Answers every held poll now (shutdown): empty, with its cursor. */
  closeAll(): void {
    for (const set of this.byChannel.values()) {
      for (const w of set) {
        clearTimeout(w.timer);
        w.reply.json(200, rangeBody({ messages: [], cursor: w.cursor }));
      }
    }
    this.byChannel.clear();
  }
}

export function attachLongPoll(app: TemplatedApp, deps: PullDeps, pollers: LongPollers): void {
  app.get('/v1/poll', (res, req) => {
    const info = readRequest(req);
    const address = deps.gate.address(res, req);
    const reply = new Reply(res);
    void (async () => {
      // A held poll counts against its address's open connections until it is answered.
      const refused = deps.gate.check('request', address, true);
      if (refused) throw refused;
      deps.gate.hold(address);
      reply.finally(() => deps.gate.release(address));
      const channel = requireChannel(queryParam(info.query, 'channel'));
      const timeoutS = intParam(info.query, 'timeout', 25, 0, 60);
      const limit = intParam(info.query, 'limit', 100, 1, 1000);
      await authorize(deps, info.token, [channel]);
      let r = await readSince(deps, channel, queryParam(info.query, 'cursor'), limit);
      if (r.messages.length > 0 || timeoutS === 0) return reply.json(200, rangeBody(r));
      // Nothing yet: look again and register the waiter in the same turn, so that no message can
      // slip between the look and the wait.
      for (;;) {
        const again = readSince(deps, channel, r.cursor, limit);
        if (again instanceof Promise) {
          r = await again;
          if (r.messages.length > 0) return reply.json(200, rangeBody(r));
          continue;
        }
        r = again;
        break;
      }
      if (r.messages.length > 0) return reply.json(200, rangeBody(r));
      if (reply.aborted) return;
      const again = r;
      const w: Waiter = {
        reply,
        cursor: again.cursor,
        after: parsePosition(again.cursor)?.offset ?? -1,
        pending: [],
        limit,
        timer: setTimeout(() => {
          pollers.remove(channel, w);
          reply.json(200, rangeBody({ messages: [], cursor: again.cursor }));
        }, timeoutS * 1000),
      };
      reply.whenAborted(() => {
        clearTimeout(w.timer);
        pollers.remove(channel, w);
      });
      pollers.add(channel, w);
    })().catch((err: unknown) => reply.error(err));
  });
}
