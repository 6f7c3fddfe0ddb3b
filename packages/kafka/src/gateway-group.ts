/**
 * The regional consumer group of gateways, as Kafka itself holds it.
 *
 * Each region's gateways consume the users topic in one group (`fanout-gw-<region>`). Every member
 * publishes who it is (node name, public URL) in its group-protocol metadata, through the
 * assigner below, and the leader's assignment carries an assignment id that changes on every
 * rebalance. So anyone with admin access (the router, other gateways) learns from DescribeGroups
 * which gateway owns which partition and where to reach it, without a side database.
 */
import { randomBytes } from 'node:crypto';
import { AssignerProtocol, type Kafka, type PartitionAssigner } from 'kafkajs';
import type { Logger } from '@fanout/observability';

export const GATEWAY_ASSIGNER = 'FanoutGatewayAssigner';

export interface GatewayIdentity {
  node: string;
  /** Base URL clients use (http://host:port); WebSocket is at <url>/v1/ws. */
  url: string;
}

function decodeIdentity(buf: Buffer | null | undefined): GatewayIdentity | null {
  try {
    const meta = buf ? AssignerProtocol.MemberMetadata.decode(buf) : null;
    if (!meta?.userData?.length) return null;
    const v = JSON.parse(meta.userData.toString()) as GatewayIdentity;
    return typeof v.node === 'string' && typeof v.url === 'string' ? v : null;
  } catch {
    return null;
  }
}

function decodeOwned(buf: Buffer | null | undefined): number[] {
  try {
    const meta = buf ? AssignerProtocol.MemberMetadata.decode(buf) : null;
    if (!meta?.userData?.length) return [];
    const v = JSON.parse(meta.userData.toString()) as { owned?: unknown };
    return Array.isArray(v.owned) ? v.owned.filter((p): p is number => Number.isInteger(p)) : [];
  } catch {
    return [];
  }
}

/**
 * Balanced and sticky: every member gets floor(P/n) or ceil(P/n) of a topic's partitions, and
 * keeps the partitions it already owns as far as its share allows, so adding or removing a gateway
 * moves only the partitions that must move (and only their clients are redirected). Members are
 * ordered by node name, so the same set of gateways starting fresh always gets the same
 * assignment. Each member's identity and current partitions ride in its metadata.
 */
export function gatewayAssigner(self: GatewayIdentity, owned: () => number[] = () => []): PartitionAssigner {
  return ({ cluster }) => ({
    name: GATEWAY_ASSIGNER,
    version: 1,
    async assign({ members, topics }) {
      const sorted = members
        .map((m) => {
          let subscribed: string[] = topics;
          try {
            subscribed = AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.topics ?? topics;
          } catch {
            /* keep every topic */
          }
          return {
            memberId: m.memberId,
            node: decodeIdentity(m.memberMetadata)?.node ?? m.memberId,
            subscribed,
            owned: decodeOwned(m.memberMetadata),
          };
        })
        .sort((a, b) => (a.node === b.node ? a.memberId.localeCompare(b.memberId) : a.node.localeCompare(b.node)));
      const assignment = new Map<string, Record<string, number[]>>(sorted.map((m) => [m.memberId, {}]));
      for (const topic of topics) {
        // A topic's partitions go only to the members that subscribed to it.
        const takers = sorted.filter((m) => m.subscribed.includes(topic));
        if (takers.length === 0) continue;
        const partitions = cluster
          .findTopicPartitionMetadata(topic)
          .map((p) => p.partitionId)
          .sort((a, b) => a - b);
        const exists = new Set(partitions);
        // Shares: the members that own the most now get the larger ones (less movement).
        const base = Math.floor(partitions.length / takers.length);
        const extra = partitions.length % takers.length;
        const byOwned = [...takers].sort((a, b) => b.owned.length - a.owned.length || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
        const share = new Map(byOwned.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
        const taken = new Set<number>();
        const give = (memberId: string, p: number) => {
          (assignment.get(memberId)![topic] ??= []).push(p);
          taken.add(p);
        };
        // Keep what each member owns, up to its share.
        for (const m of takers) {
          for (const p of [...m.owned].sort((a, b) => a - b)) {
            if ((assignment.get(m.memberId)![topic]?.length ?? 0) >= share.get(m.memberId)!) break;
            if (exists.has(p) && !taken.has(p)) give(m.memberId, p);
          }
        }
        // Hand out the rest to members under their share, in node order.
        let i = 0;
        for (const p of partitions) {
          if (taken.has(p)) continue;
          for (let k = 0; k < takers.length; k++) {
            const m = takers[(i + k) % takers.length]!;
            if ((assignment.get(m.memberId)![topic]?.length ?? 0) < share.get(m.memberId)!) {
              give(m.memberId, p);
              i = (i + k + 1) % takers.length;
              break;
            }
          }
        }
        for (const m of takers) assignment.get(m.memberId)![topic]?.sort((a, b) => a - b);
      }
      const assignmentId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      return [...assignment].map(([memberId, a]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: a,
          userData: Buffer.from(JSON.stringify({ assignmentId })),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: GATEWAY_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(JSON.stringify({ ...self, owned: owned() })),
        }),
      };
    },
  });
}

export interface GroupMemberView extends GatewayIdentity {
  memberId: string;
  partitions: number[];
}

export interface GroupSnapshot {
  groupId: string;
  /** Kafka's group state: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead. */
  state: string;
  /** Changes on every rebalance (the leader's assignment id); null while none is known. */
  generation: string | null;
  members: GroupMemberView[];
  /** partition -> owning member (only while Stable). */
  owners: Map<number, GroupMemberView>;
  updatedAt: number;
}

export function emptySnapshot(groupId: string): GroupSnapshot {
  return { groupId, state: 'Unknown', generation: null, members: [], owners: new Map(), updatedAt: 0 };
}

/** Polls DescribeGroups for one group and keeps the decoded result. */
export class GroupView {
  snapshot: GroupSnapshot;
  /** The last snapshot taken while the group was Stable (its owners are the last known ones). */
  stable: GroupSnapshot | null = null;
  private timer: NodeJS.Timeout | null = null;
  private admin: ReturnType<Kafka['admin']> | null = null;
  private listeners: ((s: GroupSnapshot, prev: GroupSnapshot) => void)[] = [];

  constructor(private readonly o: { kafka: Kafka; groupId: string; topic: string; refreshMs: number; logger: Logger }) {
    this.snapshot = emptySnapshot(o.groupId);
  }

  onChange(fn: (s: GroupSnapshot, prev: GroupSnapshot) => void): void {
    this.listeners.push(fn);
  }

  async start(): Promise<void> {
    this.admin = this.o.kafka.admin();
    await this.admin.connect();
    await this.refresh();
    const loop = () => {
      this.timer = setTimeout(() => void this.refresh().finally(() => this.timer && loop()), this.o.refreshMs);
    };
    loop();
  }

  async refresh(): Promise<void> {
    if (!this.admin) return;
    try {
      const { groups } = await this.admin.describeGroups([this.o.groupId]);
      const g = groups[0];
      const members: GroupMemberView[] = [];
      let generation: string | null = null;
      for (const m of g?.members ?? []) {
        const id = decodeIdentity(m.memberMetadata);
        let partitions: number[] = [];
        try {
          const a = m.memberAssignment?.length ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
          partitions = [...(a?.assignment[this.o.topic] ?? [])].sort((x, y) => x - y);
          if (a?.userData?.length) generation = (JSON.parse(a.userData.toString()) as { assignmentId?: string }).assignmentId ?? generation;
        } catch {
          /* a member of another kind; ignore its assignment */
        }
        if (id) members.push({ ...id, memberId: m.memberId, partitions });
      }
      members.sort((a, b) => a.node.localeCompare(b.node));
      const state = g?.state ?? 'Unknown';
      const owners = new Map<number, GroupMemberView>();
      if (state === 'Stable') for (const m of members) for (const p of m.partitions) owners.set(p, m);
      const prev = this.snapshot;
      this.snapshot = { groupId: this.o.groupId, state, generation, members, owners, updatedAt: Date.now() };
      if (state === 'Stable') this.stable = this.snapshot;
      if (prev.generation !== generation || prev.state !== state || prev.members.length !== members.length) {
        for (const fn of this.listeners) fn(this.snapshot, prev);
      }
    } catch (err) {
      this.o.logger.warn({ err, group: this.o.groupId }, 'describeGroups failed');
    }
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = null;
    if (t) clearTimeout(t);
    await this.admin?.disconnect();
    this.admin = null;
  }
}
