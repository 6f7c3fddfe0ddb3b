/**
 * What happens to a connection's queue when it is full, set per channel namespace:
 *
 * - `conflate`: while the connection is blocked, a newer message replaces the queued one with the
 *   same key (the channel, or `<channel>/<field value>` for `conflate:<field>`), so a slow
 *   dashboard gets fresh prices, not old ones. If the queue is still full, the oldest is dropped.
 * - `drop`: the oldest droppable message is dropped and the client gets a `gap` frame with the
 *   positions it missed, so it can pull them.
 * - `disconnect`: nothing is dropped; if the queue cannot make room by dropping messages of other
 *   policies, the connection is closed with 4001 (slow consumer) and the client resumes.
 *
 * Configured as `FANOUT_QUEUE_POLICIES=prices=conflate,ticks=conflate:sym,orders=disconnect`, with
 * `FANOUT_DEFAULT_QUEUE_POLICY` for namespaces not listed.
 */
import { namespaceOf } from '@fanout/protocol';
export type QueuePolicy = 'conflate' | 'drop' | 'disconnect';

export interface NamespacePolicy {
  policy: QueuePolicy;
  /** For conflate: a top-level field of the event data that, with the channel, forms the key. */
  keyField: string | null;
}

const SPEC_RE = /^([a-z][a-z0-9-]{0,31})=(conflate|drop|disconnect)(?::([A-Za-z0-9_]{1,64}))?$/;

export class QueuePolicies {
  private readonly byNamespace = new Map<string, NamespacePolicy>();
  private readonly fallback: NamespacePolicy;

  /** Throws an Error naming the bad entry; the config layer turns it into a ConfigError. */
  constructor(specs: readonly string[], defaultPolicy: string) {
    if (defaultPolicy !== 'conflate' && defaultPolicy !== 'drop' && defaultPolicy !== 'disconnect') {
      throw new Error(`default policy ${JSON.stringify(defaultPolicy)} must be conflate, drop or disconnect`);
    }
    this.fallback = { policy: defaultPolicy, keyField: null };
    for (const spec of specs) {
      const m = SPEC_RE.exec(spec);
      if (!m) throw new Error(`${JSON.stringify(spec)} is not <namespace>=conflate[:<field>]|drop|disconnect`);
      if (m[3] && m[2] !== 'conflate') throw new Error(`${JSON.stringify(spec)}: only conflate takes a key field`);
      this.byNamespace.set(m[1]!, { policy: m[2] as QueuePolicy, keyField: m[3] ?? null });
    }
  }

  forNamespace(namespace: string): NamespacePolicy {
    return this.byNamespace.get(namespace) ?? this.fallback;
  }

  /** The policy of a channel's namespace (no slicing when no namespace has its own policy). */
  forChannel(channel: string): NamespacePolicy {
    return this.byNamespace.size === 0 ? this.fallback : this.forNamespace(namespaceOf(channel));
  }

  /** The conflation key of one message (computed once per message per gateway). */
  static conflateKey(channel: string, keyField: string | null, dataJson: string): string {
    if (keyField === null) return channel;
    try {
      const data = JSON.parse(dataJson) as Record<string, unknown> | null;
      const v = data !== null && typeof data === 'object' ? data[keyField] : undefined;
      return v === undefined ? channel : `${channel}/${String(v)}`;
    } catch {
      return channel;
    }
  }
}
