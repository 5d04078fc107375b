// Options of `hongbao demo` and the two scales of the experiment, each with its process layout.
import { ConfigError } from '../common/errors.ts';
import type { CommandSpec } from '../common/options.ts';

export interface DemoOptions {
  scale: 'small' | 'full';
  phases: string | undefined;
  results: string;
  agents: number | undefined;
  agentWorkers: number | undefined;
  stubWorkers: number | undefined;
  users: number | undefined;
  ramp: number;
  generatorRate: number;
  senderRate: number;
  connectTimeout: number | undefined;
  handshakeTimeout: number | undefined;
  mode: 'spread' | 'burst';
  rule: 'modulo' | 'window';
  spreadStep: number | undefined;
  transport: 'ws' | 'tcp';
}

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary:
    'The whole experiment on this machine: a stub, a controller with its SNTP responder and a local fleet of agents on 26 source IPs (127.0.0.2-27); connect everyone, hold QPS step 1, switch to step 2, with the envelope generator and the sending service on; then a summary table and PNG charts in results/.',
  usage: 'hongbao demo [--scale small|full] [--phases QPS:SECONDS,...] [--results DIR]',
  options: [
    { flag: 'scale', type: 'enum', choices: ['small', 'full'], default: 'small', help: 'small: 51,000 users, 1,500 -> 3,000 QPS (the original ratio, ~2 min); full: 1,020,000 users, 30k -> 60k QPS' },
    { flag: 'phases', type: 'string', arg: 'QPS:SECONDS,...', help: 'QPS steps and how long each lasts (default from --scale: 30 s each)' },
    { flag: 'results', type: 'string', default: 'results', arg: 'DIR', help: 'folder of run outputs' },
    { flag: 'agents', type: 'int', min: 1, max: 26, arg: 'N', help: 'agents in the local fleet (default: small 3, full 13)' },
    { flag: 'agent-workers', type: 'int', min: 1, max: 64, arg: 'N', help: 'worker processes per agent (default: small as the agent chooses, full 4)' },
    { flag: 'stub-workers', type: 'int', min: 1, max: 256, arg: 'N', help: 'stub worker processes (default: small 4 of 256 SETs, full 52 of 260 SETs: 5 each)' },
    {
      flag: 'users',
      type: 'int',
      min: 1,
      max: 2_000_000,
      arg: 'N',
      help: 'users of the fleet instead of the scale\'s, on the same process layout (a quick try: --users 2000 --phases 60:5,120:5)',
    },
    {
      flag: 'ramp',
      type: 'int',
      min: 100,
      max: 1_000_000,
      default: 8000,
      arg: 'CONN/S',
      help: 'most new connections per second of the agent logging in (agents log in one after another; each also adapts its attempts in flight to how fast the stub answers)',
    },
    { flag: 'generator-rate', type: 'int', min: 0, max: 100_000, default: 200, help: 'envelopes per second the generator pushes into the SET queues' },
    { flag: 'sender-rate', type: 'int', min: 0, max: 10_000, default: 20, help: 'envelopes per second the sending service creates, 3 named users each' },
    {
      flag: 'connect-timeout',
      type: 'int',
      min: 10,
      max: 7200,
      arg: 'SECONDS',
      help: 'give up when not everyone is logged in by then (default: 120 s plus 4 ms per user: small 324, full 4200)',
    },
    {
      flag: 'handshake-timeout',
      type: 'int',
      min: 100,
      max: 120_000,
      arg: 'MS',
      help: "one connection's connect + WebSocket handshake deadline, passed to the agents (default: small 10000, full 30000)",
    },
    { flag: 'mode', type: 'enum', choices: ['spread', 'burst'], default: 'spread', help: 'agents spread their shakes over the first 900 ms or fire at the top of the second' },
    { flag: 'rule', type: 'enum', choices: ['modulo', 'window'], default: 'window', help: "who fires when: window (exact for any QPS) or modulo (the original's)" },
    { flag: 'transport', type: 'enum', choices: ['ws', 'tcp'], default: 'ws', help: "ws: WebSocket; tcp: the original experiment's raw-TCP framing (the stub's --tcp-port, agents on tcp://)" },
    {
      flag: 'spread-step',
      type: 'int',
      min: 1,
      max: 100,
      arg: 'MS',
      help: "the agents' grid of spread offsets (default: small 10, full 100: with ~120 processes on the machine, fewer wake-ups a second)",
    },
  ],
};

export interface Scale {
  users: number;
  agents: number;
  /** Worker processes per agent; undefined: the agent's own default. */
  agentWorkers: number | undefined;
  sourceIps: string[];
  stubWorkers: number;
  /** SETs of the stub: a multiple of its workers, so that every worker owns as many. */
  sets: number;
  /** Seconds between a QPS change and the second it takes effect (the controller's --lead). */
  leadSeconds: number;
  phases: Array<{ qps: number; seconds: number }>;
  connectTimeoutS: number;
  handshakeTimeoutMs: number;
  spreadStepMs: number;
}

/** Loopback source addresses of the local fleet: two per agent of the full layout (~39,000 ports each). */
export const SOURCE_IPS = Array.from({ length: 26 }, (_, i) => `127.0.0.${i + 2}`);

/**
 * The process layouts. Full: as few processes as the 20,000 open files per process allow, because on
 * 2 cores every extra process costs memory (~40 MB before it holds a socket) and CPU per wake-up:
 * 1,020,000 users = 13 agents x 4 workers x 19,616 sockets (two source addresses per agent), and a
 * stub of 52 workers owning 5 of 260 SETs each (19,616 users per worker). 17 agents x 3 workers or
 * 256 SETs on 52 workers would need more than 20,000 sockets in some process. A scale keeps its
 * layout when --users changes, so a small run shows how the full one behaves.
 */
const LAYOUTS = {
  small: { users: 51_000, agents: 3, agentWorkers: undefined, stubWorkers: 4, sets: 256, leadSeconds: 2, handshakeTimeoutMs: 10_000, spreadStepMs: 10 },
  full: { users: 1_020_000, agents: 13, agentWorkers: 4, stubWorkers: 52, sets: 260, leadSeconds: 5, handshakeTimeoutMs: 30_000, spreadStepMs: 100 },
} as const;

export function parsePhases(text: string, users: number): Array<{ qps: number; seconds: number }> {
  const phases = text.split(',').map((part) => {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(part);
    if (!m) throw new ConfigError(`hongbao demo: --phases must be QPS:SECONDS,... (e.g. 1500:30,3000:30), got ${JSON.stringify(text)}`);
    const qps = Number(m[1]);
    const seconds = Number(m[2]);
    if (qps > users) throw new ConfigError(`hongbao demo: --phases QPS ${qps} is above the ${users} users of this scale`);
    if (seconds < 1 || seconds > 3600) throw new ConfigError(`hongbao demo: --phases seconds must be 1..3600, got ${seconds}`);
    return { qps, seconds };
  });
  return phases;
}

export function scaleOf(o: DemoOptions): Scale {
  const full = o.scale === 'full';
  const layout = LAYOUTS[o.scale];
  // The original: 17 VMs x 60,000 users = 1,020,000 at 30k then 60k QPS. Small keeps the ratio at 1/20.
  const users = o.users ?? layout.users;
  const agents = o.agents ?? layout.agents;
  const phases = o.phases ? parsePhases(o.phases, users) : full ? [{ qps: 30_000, seconds: 60 }, { qps: 60_000, seconds: 60 }] : [{ qps: 1_500, seconds: 30 }, { qps: 3_000, seconds: 30 }];
  if (agents > users) throw new ConfigError(`hongbao demo: --agents ${agents} is more than the ${users} users`);
  return {
    users,
    agents,
    agentWorkers: o.agentWorkers ?? layout.agentWorkers,
    sourceIps: SOURCE_IPS,
    stubWorkers: o.stubWorkers ?? layout.stubWorkers,
    sets: layout.sets,
    leadSeconds: layout.leadSeconds,
    phases,
    // Connecting runs at ~1,000-2,500 users/s here: allow 4 ms per user on top of two minutes.
    connectTimeoutS: o.connectTimeout ?? Math.ceil(120 + users * 0.004),
    handshakeTimeoutMs: o.handshakeTimeout ?? layout.handshakeTimeoutMs,
    spreadStepMs: o.spreadStep ?? layout.spreadStepMs,
  };
}
