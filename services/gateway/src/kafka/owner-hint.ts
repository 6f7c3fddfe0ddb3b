/**
 * The message of a `wrong_gateway` answer (WebSocket error frame, HTTP 409): the users partition
 * of the channel, the gateway that owns it now if the region's group says so (and it is not this
 * one), and where to ask (the router, when FANOUT_ROUTER_URL is set).
 */
import { keyFor, type GroupView } from '@fanout/kafka';
import type { Streams } from '../delivery/streams.js';

export function ownerHint(o: {
  streams: Streams;
  group: GroupView;
  node: string;
  region: string;
  routerUrl: string;
}): (channel: string) => string {
  return (channel) => {
    const p = o.streams.partitionOf(channel);
    const owner = o.group.snapshot.owners.get(p);
    const router = o.routerUrl
      ? ` Ask ${o.routerUrl}/v1/route?user=${encodeURIComponent(keyFor(channel))}&region=${o.region}.`
      : ' Ask the router where to connect.';
    return `This gateway does not serve ${channel} (users partition ${p}) now.${owner && owner.node !== o.node ? ` Its owner is ${owner.node} at ${owner.url}.` : ''}${router}`;
  };
}
