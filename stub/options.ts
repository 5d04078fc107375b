// Options of `hongbao stub`: defaults and ranges in one table, validated once at the edge.
import type { CommandSpec } from '../common/options.ts';

export interface StubOptions {
  port: number;
  tcpPort: number | undefined;
  httpPort: number;
  host: string;
  workers: number;
  sets: number;
  maxQps: number;
  iface: string;
  token: string | undefined;
  history: number;
  acceptors: number;
}

export const stubCommand: CommandSpec = {
  name: 'stub',
  summary: 'The red-envelope server: SETs, envelope queues, generator, sending service, per-second counters.',
  usage: 'hongbao stub [--port 1025] [--tcp-port PORT] [--http-port 8989] [--host 127.0.0.1] [--workers N] [--sets 256] [--max-qps 65000]',
  options: [
    { flag: 'port', type: 'int', min: 0, max: 65535, default: 1025, help: 'WebSocket port (0 picks a free one)' },
    {
      flag: 'tcp-port',
      type: 'int',
      min: 0,
      max: 65535,
      arg: 'PORT',
      help: "also accept the original experiment's raw-TCP framing on PORT (0 picks a free one; default: off)",
    },
    { flag: 'http-port', type: 'int', min: 0, max: 65535, default: 8989, help: 'HTTP port of /stats, /metrics, /health, /audit, /generator, /sender' },
    { flag: 'host', type: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for a real fleet)' },
    { flag: 'workers', type: 'int', min: 1, max: 256, default: 1, help: 'worker processes holding connections (each below the 20000 fd limit)' },
    { flag: 'sets', type: 'int', min: 1, max: 65536, default: 256, help: 'SETs: users map to SET userId % sets' },
    { flag: 'max-qps', type: 'int', min: 1, max: 100_000_000, default: 65000, help: 'served shakes per second above which shakes get overload (17)' },
    { flag: 'iface', type: 'string', default: 'auto', help: 'NIC whose rx/tx packets are counted (auto: lo on loopback, else the busiest)' },
    { flag: 'token', type: 'string', sharedEnv: 'HONGBAO_TOKEN', help: 'bearer token required by POST routes' },
    {
      flag: 'acceptors',
      type: 'int',
      min: 1,
      max: 256,
      default: 4,
      help: 'workers that accept new connections on the port (at most --workers); each hands a connection to the worker owning its user\'s SET',
    },
    { flag: 'history', type: 'int', min: 10, max: 86400, default: 3600, help: 'seconds of per-second counters kept for /stats' },
  ],
};
