/**
 * Short polling with ETags, and the pull half of push-then-pull:
 *
 * - `GET /v1/history?channel=<ch>&since=<cursor>&limit=<n>`: the channel's messages after the
 *   cursor (without one: what the window holds), `{"messages": [...], "cursor": "..."}`.
 * - `GET /v1/latest?channel=<ch>`: the channel's newest message, `{"message": <envelope> | null}`.
 *
 * Both carry an ETag naming the channel's newest position; `If-None-Match` with it answers `304`
 * with no body, so a poller that finds nothing new costs a header exchange.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { FanoutError, formatPosition } from '@fanout/protocol';
import { authorize, intParam, rangeBody, readRequest, readSince, Reply, requireChannel, type PullDeps, queryParam } from './http-common.js';

/** Names the channel's newest position, and for history the request's since/limit (the representation depends on them). */
function etagFor(deps: PullDeps, channel: string, variant = ''): string {
  // The position only: a poller answered 304 costs no message read back from the window.
  const latest = deps.streams.for(channel).windows.latestPosition(channel);
  return `W/"${latest ? formatPosition({ epoch: deps.epoch, ...latest }) : 'none'}${variant}"`;
}

function matches(ifNoneMatch: string, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => strip(t) === strip(etag));
}

export function attachEtagPoll(app: TemplatedApp, deps: PullDeps): void {
  app.get('/v1/history', (res, req) => {
    const info = readRequest(req);
    const address = deps.gate.address(res, req);
    const reply = new Reply(res);
    void (async () => {
      const refused = deps.gate.check('request', address);
      if (refused) throw refused;
      const channel = requireChannel(queryParam(info.query, 'channel'));
      const limit = intParam(info.query, 'limit', 100, 1, 1000);
      await authorize(deps, info.token, [channel]);
      const stream = deps.streams.for(channel);
      const partition = deps.streams.partitionOf(channel);
      if (!stream.owns(partition)) throw new FanoutError('wrong_gateway', deps.ownerHint(channel));
      const since = queryParam(info.query, 'since');
      const etag = etagFor(deps, channel, `;${since ?? ''};${limit}`);
      if (matches(info.ifNoneMatch, etag)) return reply.notModified(etag);
      if (since === null) {
        const all = stream.windows.all(channel, limit);
        const cursor = formatPosition({ epoch: deps.epoch, partition, offset: stream.windows.lastOffset(partition) ?? -1 });
        return reply.json(200, rangeBody({ messages: all, cursor }), { etag });
      }
      const r = await readSince(deps, channel, since, limit);
      reply.json(200, rangeBody(r), { etag });
    })().catch((err: unknown) => reply.error(err));
  });

  app.get('/v1/latest', (res, req) => {
    const info = readRequest(req);
    const address = deps.gate.address(res, req);
    const reply = new Reply(res);
    void (async () => {
      const refused = deps.gate.check('request', address);
      if (refused) throw refused;
      const channel = requireChannel(queryParam(info.query, 'channel'));
      await authorize(deps, info.token, [channel]);
      const stream = deps.streams.for(channel);
      if (!stream.owns(deps.streams.partitionOf(channel))) throw new FanoutError('wrong_gateway', deps.ownerHint(channel));
      const etag = etagFor(deps, channel);
      if (matches(info.ifNoneMatch, etag)) return reply.notModified(etag);
      const latest = stream.windows.latest(channel);
      reply.json(200, `{"message":${latest ? latest.json : 'null'}}`, { etag });
    })().catch((err: unknown) => reply.error(err));
  });
}
