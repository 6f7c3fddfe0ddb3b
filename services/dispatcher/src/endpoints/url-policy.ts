/**
 * Which URLs the dispatcher may POST to (SSRF protection).
 *
 * Refused by default: loopback, link-local (cloud metadata at 169.254.169.254), private, shared
 * (CGNAT), documentation, multicast and reserved ranges, IPv4 and IPv6, including IPv4 inside
 * IPv4-mapped IPv6. A hostname is checked on every address it resolves to, both when the endpoint
 * is saved and again at every new connection (the `lookup` below is what the socket connects
 * through), so a DNS answer that changes to a private address later is refused too. Ranges in
 * FANOUT_ALLOWED_TARGETS are let through (tests and local development).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { FanoutError } from '@fanout/protocol';

const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
const BLOCKED_V6 = [
  '::/128',
  '::1/128',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

const BLOCKED = new BlockList();
for (const r of BLOCKED_V4) {
  const [a, b] = r.split('/');
  BLOCKED.addSubnet(a!, Number(b), 'ipv4');
}
for (const r of BLOCKED_V6) {
  const [a, b] = r.split('/');
  BLOCKED.addSubnet(a!, Number(b), 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) IPv6 address. */
function embeddedV4(ip6: string): string | null {
  const groups = expandV6(ip6);
  if (!groups) return null;
  const zeros = groups.slice(0, 5).every((g) => g === 0);
  if (!zeros || (groups[5] !== 0xffff && groups[5] !== 0)) return null;
  if (groups[5] === 0 && groups[6] === 0) return null; // :: and ::1 are handled as IPv6
  return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
}

function expandV6(ip: string): number[] | null {
  let s = ip.toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  // A dotted IPv4 tail becomes two groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

export class UrlPolicy {
  constructor(private readonly o: { allowList: BlockList; requireHttps: boolean }) {}

  /** True when the address may not be a target. */
  isForbiddenAddress(address: string): boolean {
    const type = isIP(address);
    if (type === 0) return true;
    if (type === 4) return BLOCKED.check(address, 'ipv4') && !this.o.allowList.check(address, 'ipv4');
    const v4 = embeddedV4(address);
    if (v4 !== null) return this.isForbiddenAddress(v4);
    return BLOCKED.check(address, 'ipv6') && !this.o.allowList.check(address, 'ipv6');
  }

  /** Checks the URL's shape; throws invalid_webhook_url. */
  parse(raw: string): URL {
    if (raw.length > 2048) throw new FanoutError('invalid_webhook_url', `The URL is ${raw.length} characters; the limit is 2048.`);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new FanoutError('invalid_webhook_url', `${JSON.stringify(raw.slice(0, 100))} is not an absolute URL.`);
    }
    if (url.protocol !== 'https:' && (url.protocol !== 'http:' || this.o.requireHttps)) {
      throw new FanoutError(
        'invalid_webhook_url',
        this.o.requireHttps ? 'Endpoint URLs must use https.' : 'Endpoint URLs must use http or https.',
      );
    }
    if (url.username || url.password)
      throw new FanoutError(
        'invalid_webhook_url',
        'The URL must not carry credentials (user:password@); authenticate receivers by the signature.',
      );
    if (url.hash) throw new FanoutError('invalid_webhook_url', 'The URL must not have a #fragment.');
    return url;
  }

  /** Shape, then every address the host resolves to now; throws invalid_webhook_url or webhook_url_forbidden. */
  async check(raw: string): Promise<URL> {
    const url = this.parse(raw);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = (
          await new Promise<LookupAddress[]>((resolve, reject) =>
            dnsLookup(host, { all: true }, (err, a) => (err ? reject(err) : resolve(a))),
          )
        ).map((a) => a.address);
      } catch {
        throw new FanoutError('invalid_webhook_url', `The host ${JSON.stringify(host.slice(0, 100))} does not resolve.`);
      }
    }
    const bad = addresses.find((a) => this.isForbiddenAddress(a));
    if (bad !== undefined) {
      throw new FanoutError(
        'webhook_url_forbidden',
        `The URL's host ${isIP(host) ? '' : `resolves to ${bad}, which `}is a loopback, link-local, private or reserved address; use a public address.`,
        { detail: { address: bad } },
      );
    }
    return url;
  }

  /**
   * The DNS lookup sockets connect through: it refuses (ETARGETFORBIDDEN) a host with any address
   * that may not be a target, so the address checked is the address connected to.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(
      hostname,
      { all: true, family: options.family ?? 0, ...(options.hints !== undefined ? { hints: options.hints } : {}) },
      (err, addresses) => {
        if (err) return (callback as (e: Error) => void)(err);
        const bad = addresses.find((a) => this.isForbiddenAddress(a.address));
        if (bad || addresses.length === 0) {
          const e = Object.assign(new Error(`${hostname} resolves to ${bad?.address ?? 'nothing'}, which may not be a webhook target`), {
            code: 'ETARGETFORBIDDEN',
          });
          return (callback as (e: Error) => void)(e);
        }
        if (options.all) (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
        else (callback as (e: null, a: string, f: number) => void)(null, addresses[0]!.address, addresses[0]!.family);
      },
    );
  };
}
