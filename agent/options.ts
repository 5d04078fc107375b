// Options of `hongbao agent`: one table, validated once at the edge. Cross-field checks (users within
// --total-users, --qps <= --total-users) and the expansion of --source-ip ranges live here too, so
// every bad value is a ConfigError naming its flag (exit 2).
import { isIP } from 'node:net';
import { ConfigError } from '../common/errors.ts';
import type { CommandSpec } from '../common/options.ts';
import { parseNtpTarget } from '../common/clock.ts';

export interface AgentOptions {
  server: string;
  users: string;
  totalUsers: number;
  sourceIp: string[];
  workers: number | undefined;
  controller: string | undefined;
  controlPort: number;
  controlHost: string;
  ntp: string;
  ntpSamples: number;
  ntpResync: number;
  qps: number;
  mode: 'spread' | 'burst';
  spreadMs: number;
  spreadStep: number;
  rule: 'modulo' | 'window';
  ramp: number;
  token: string | undefined;
  id: string | undefined;
  connectTimeout: number;
  wsImpl: 'ws' | 'lite';
  noticeAnswersShake: boolean;
}

const usersRe = /^(\d{1,10}):(\d{1,10})$/;

/** Most addresses one --source-ip range may expand to. */
export const MAX_SOURCE_IPS = 4096;

export const agentCommand: CommandSpec = {
  name: 'agent',
  summary:
    'The load agent: one WebSocket per user, logged in at a bounded ramp across worker processes, shaking on the ' +
    'NTP-synchronised schedule (rules modulo|window, modes spread|burst); control endpoint POST /qps, GET /stats, /health, /metrics.',
  usage:
    'hongbao agent --server ws://HOST:1025|tcp://HOST:1025 --users FIRST:COUNT --total-users N [--source-ip IP|A-B ...] [--workers N] ' +
    '[--controller URL] [--control-port 9090] [--ntp HOST[:PORT]|off] [--qps Q] [--mode spread|burst] [--rule modulo|window]',
  options: [
    { flag: 'server', type: 'url', protocols: ['ws:', 'wss:', 'tcp:'], required: true, arg: 'URL', help: "the red-envelope server: ws://HOST:PORT (WebSocket) or tcp://HOST:PORT (the original experiment's raw-TCP framing)" },
    {
      flag: 'users',
      type: 'string',
      required: true,
      arg: 'FIRST:COUNT',
      help: 'this agent\'s users: ids FIRST .. FIRST+COUNT-1',
      check: (v: string) => {
        const m = usersRe.exec(v);
        if (!m) return 'FIRST:COUNT with integers (e.g. 0:60000)';
        if (Number(m[2]) < 1 || Number(m[2]) > 1_000_000) return 'FIRST:COUNT with COUNT from 1 to 1000000';
        if (Number(m[1]) + Number(m[2]) > 0xffffffff) return 'FIRST:COUNT with FIRST+COUNT <= 4294967295';
        return undefined;
      },
    },
    { flag: 'total-users', type: 'int', min: 1, max: 0xffffffff, required: true, arg: 'N', help: 'users of the whole fleet (ids 0..N-1): the schedule\'s N' },
    { flag: 'source-ip', type: 'string', repeat: true, default: [], arg: 'IP|A-B', help: 'local addresses to connect from, round-robin (repeat, or comma-separated in env); ranges A-B' },
    { flag: 'workers', type: 'int', min: 1, max: 256, arg: 'N', help: 'worker processes holding the connections (default: enough for the fd limit, at most the cores unless fds need more)' },
    { flag: 'controller', type: 'url', protocols: ['http:', 'https:'], arg: 'URL', help: 'controller to register with and push one sample per second to' },
    { flag: 'control-port', type: 'int', min: 0, max: 65535, default: 9090, help: 'port of the control endpoint (0 picks a free one)' },
    { flag: 'control-host', type: 'string', default: '127.0.0.1', help: 'address of the control endpoint (non-loopback needs a token)' },
    {
      flag: 'ntp',
      type: 'string',
      default: 'off',
      arg: 'HOST[:PORT]|off',
      help: 'NTP server to take the clock offset from (off: the local clock as is, e.g. disciplined by chrony)',
      check: (v: string) => {
        try {
          parseNtpTarget(v);
          return undefined;
        } catch (err) {
          return (err as Error).message;
        }
      },
    },
    { flag: 'ntp-samples', type: 'int', min: 1, max: 64, default: 8, help: 'NTP samples per sync (lowest round trip wins)' },
    { flag: 'ntp-resync', type: 'int', min: 5, max: 86400, default: 64, arg: 'SECONDS', help: 'seconds between NTP resyncs' },
    { flag: 'qps', type: 'int', min: 0, default: 0, help: 'fleet shakes per second to start with (<= --total-users)' },
    { flag: 'mode', type: 'enum', choices: ['spread', 'burst'], default: 'spread', help: 'spread: fixed per-user offsets over the first 900 ms; burst: at the top of the second' },
    { flag: 'spread-ms', type: 'int', min: 1, max: 900, default: 900, arg: 'MS', help: 'spread mode: offsets lie in [0, MS) of each second (less leaves more slack on loaded hosts)' },
    {
      flag: 'spread-step',
      type: 'int',
      min: 1,
      max: 100,
      default: 10,
      arg: 'MS',
      help: 'spread mode: offsets are multiples of MS (1: any millisecond; coarser wakes the agent and the server fewer times per second)',
    },
    { flag: 'rule', type: 'enum', choices: ['modulo', 'window'], default: 'window', help: 'modulo: the original experiment\'s (exact when QPS divides N); window: exact for any QPS' },
    { flag: 'ramp', type: 'int', min: 1, max: 1_000_000, default: 4000, arg: 'CONN/S', help: 'new connections per second for the whole agent (retries included)' },
    { flag: 'connect-timeout', type: 'int', min: 100, max: 120_000, default: 10_000, arg: 'MS', help: 'WebSocket handshake timeout' },
    {
      flag: 'ws-impl',
      type: 'enum',
      choices: ['ws', 'lite'],
      default: 'lite',
      help: 'WebSocket client: ws (the ws package) or lite (common/wslite.ts: minimal RFC 6455 on net.Socket, less CPU and memory per connection)',
    },
    {
      flag: 'notice-answers-shake',
      type: 'bool',
      default: false,
      help: "the server answers some shakes with a notice (cmd 4) instead of a shake reply, as the original Go server does: a notice then answers the connection's oldest unanswered shake (counted answered and won)",
    },
    { flag: 'token', type: 'string', sharedEnv: 'HONGBAO_TOKEN', help: 'bearer token for POST routes of the control endpoint and for the controller' },
    { flag: 'id', type: 'string', help: 'agent id reported to the controller (default HOSTNAME-FIRST)' },
  ],
};

/** Parsed FIRST:COUNT. */
export function userRange(o: AgentOptions): { first: number; count: number } {
  const m = usersRe.exec(o.users)!;
  return { first: Number(m[1]), count: Number(m[2]) };
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}

function intToIp(n: number): string {
  return [Math.floor(n / 16777216) % 256, Math.floor(n / 65536) % 256, Math.floor(n / 256) % 256, n % 256].join('.');
}

/**
 * Expands --source-ip values: single IPv4/IPv6 addresses, IPv4 ranges `A-B` (`127.0.0.2-127.0.0.9`)
 * and the short form `127.0.0.2-9` (last octet). Duplicates are an error (they would double the
 * users per address that the pre-flight check computes).
 */
export function expandSourceIps(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
    const dash = raw.indexOf('-');
    if (dash < 0) {
      if (!isIP(raw)) throw new ConfigError(`hongbao agent: --source-ip must be an IP address or a range A-B, got ${JSON.stringify(raw)}`);
      out.push(raw);
      continue;
    }
    const a = raw.slice(0, dash);
    let b = raw.slice(dash + 1);
    if (/^\d{1,3}$/.test(b)) b = a.split('.').slice(0, 3).concat(b).join('.');
    if (isIP(a) !== 4 || isIP(b) !== 4) throw new ConfigError(`hongbao agent: --source-ip range must be IPv4 A-B (or A-LASTOCTET), got ${JSON.stringify(raw)}`);
    const lo = ipToInt(a);
    const hi = ipToInt(b);
    if (hi < lo) throw new ConfigError(`hongbao agent: --source-ip range ${raw} ends before it starts`);
    if (hi - lo + 1 > MAX_SOURCE_IPS) throw new ConfigError(`hongbao agent: --source-ip range ${raw} has ${hi - lo + 1} addresses, at most ${MAX_SOURCE_IPS} allowed`);
    for (let n = lo; n <= hi; n++) out.push(intToIp(n));
  }
  if (new Set(out).size !== out.length) throw new ConfigError(`hongbao agent: --source-ip lists an address twice`);
  return out;
}

/** Source addresses as few entries as possible: runs of consecutive IPv4 addresses as "A-B" (for the controller's report). */
export function compactSourceIps(ips: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ips.length; ) {
    let j = i;
    if (isIP(ips[i]) === 4) while (j + 1 < ips.length && isIP(ips[j + 1]) === 4 && ipToInt(ips[j + 1]) === ipToInt(ips[j]) + 1) j++;
    out.push(i === j ? ips[i] : `${ips[i]}-${ips[j]}`);
    i = j + 1;
  }
  return out;
}

/** Checks that involve several flags. */
export function crossCheck(o: AgentOptions): void {
  const { first, count } = userRange(o);
  if (first + count > o.totalUsers) {
    throw new ConfigError(`hongbao agent: --users ${o.users} must lie within the fleet's ids 0..${o.totalUsers - 1} (--total-users ${o.totalUsers})`);
  }
  if (o.wsImpl === 'lite' && o.server.startsWith('wss:')) {
    throw new ConfigError(`hongbao agent: --ws-impl lite supports ws:// and tcp:// servers, not wss://: use --ws-impl ws for --server ${o.server}`);
  }
  if (o.wsImpl === 'ws' && o.server.startsWith('tcp:')) {
    throw new ConfigError(`hongbao agent: --ws-impl ws speaks WebSocket only; a tcp:// server (--server ${o.server}) needs --ws-impl lite (the default)`);
  }
  if (o.server.startsWith('tcp:') && !new URL(o.server).port) {
    throw new ConfigError(`hongbao agent: --server ${o.server} needs a port (tcp://HOST:PORT)`);
  }
  if (o.qps > o.totalUsers) throw new ConfigError(`hongbao agent: --qps must be an integer from 0 to ${o.totalUsers} (--total-users), got ${o.qps}`);
}
