import { describe, expect, it } from 'vitest';
import { AssignerProtocol } from 'kafkajs';
import { gatewayAssigner } from '@fanout/kafka';

const TOPIC = 'users';
// The assigner reads partition ids from the cluster's metadata: give it 12 partitions.
const cluster = { findTopicPartitionMetadata: () => Array.from({ length: 12 }, (_, i) => ({ partitionId: i })) };

function member(node: string, owned: number[]) {
  const assigner = gatewayAssigner({ node, url: `http://${node}` }, () => owned)({ cluster } as never);
  return { memberId: `${node}-id`, memberMetadata: assigner.protocol({ topics: [TOPIC] }).metadata };
}

async function assign(members: ReturnType<typeof member>[]): Promise<Record<string, number[]>> {
  const leader = gatewayAssigner({ node: 'x', url: 'http://x' })({ cluster } as never);
  const out = await leader.assign({ members, topics: [TOPIC] });
  return Object.fromEntries(
    out.map((a) => [a.memberId.replace(/-id$/, ''), AssignerProtocol.MemberAssignment.decode(a.memberAssignment)!.assignment[TOPIC] ?? []]),
  );
}

const moved = (before: Record<string, number[]>, after: Record<string, number[]>) =>
  Object.entries(after).reduce((n, [node, ps]) => n + ps.filter((p) => !(before[node] ?? []).includes(p)).length, 0);

describe('the gateway assigner', () => {
  it('balances a fresh group the same way every time', async () => {
    const a = await assign([member('gw-b', []), member('gw-a', [])]);
    expect(a['gw-a']!.length).toBe(6);
    expect(a['gw-b']!.length).toBe(6);
    expect(await assign([member('gw-a', []), member('gw-b', [])])).toEqual(a);
  });

  it('moves only the partitions a new gateway must take', async () => {
    const before = { 'gw-a': [0, 1, 2, 3, 4, 5], 'gw-b': [6, 7, 8, 9, 10, 11] };
    const after = await assign([member('gw-a', before['gw-a']), member('gw-b', before['gw-b']), member('gw-c', [])]);
    for (const ps of Object.values(after)) expect(ps.length).toBe(4);
    expect(moved(before, after)).toBe(4);
    expect(new Set(Object.values(after).flat()).size).toBe(12);
  });

  it('keeps what the remaining gateway owns when one leaves', async () => {
    const after = await assign([member('gw-b', [6, 7, 8, 9])]);
    expect(after['gw-b']).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('never gives one partition to two members, even if both claim it', async () => {
    const after = await assign([member('gw-a', [0, 1, 2]), member('gw-b', [0, 1, 2])]);
    expect(
      Object.values(after)
        .flat()
        .sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});
