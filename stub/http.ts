// The stub's HTTP surface. build() returns the Fastify app without listening: tests use inject().
import type { FastifyInstance } from 'fastify';
import { baseApp, errorResponses } from '../common/http.ts';
import { CONTENT_TYPE as PROMETHEUS_TYPE } from '../common/prometheus.ts';
import { numberProperties } from '../common/fields.ts';
import { FIELDS } from './fields.ts';
import type { StubCore } from './core.ts';

const secondSchema = {
  type: 'object',
  properties: { second: { type: 'integer' }, ...numberProperties(FIELDS) },
} as const;

const pacerStatus = {
  type: 'object',
  properties: {
    rate: { type: 'integer' },
    total: { type: 'integer' },
    emitted: { type: 'integer' },
    missed: { type: 'integer' },
    startSecond: { type: 'integer' },
    finished: { type: 'boolean' },
    users: { type: 'integer' },
    minUser: { type: 'integer' },
    maxUser: { type: 'integer' },
    amount: { type: 'integer' },
  },
} as const;

const u32 = { type: 'integer', minimum: 0, maximum: 0xffffffff } as const;

export function build(core: StubCore, opts: { token?: string } = {}): FastifyInstance {
  const app = baseApp({ token: opts.token, bodyLimit: 64 * 1024 });

  app.get(
    '/stats',
    {
      schema: {
        querystring: { type: 'object', properties: { since: { type: 'string', pattern: '^[0-9]{1,15}$' } }, additionalProperties: false },
        response: {
          200: { type: 'object', properties: { now: { type: 'integer' }, connections: { type: 'integer' }, seconds: { type: 'array', items: secondSchema } } },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { since } = req.query as { since?: string };
      return core.stats(since === undefined ? undefined : Number(since));
    },
  );

  app.get('/metrics', async (_req, reply) => reply.type(PROMETHEUS_TYPE).send(core.metrics()));

  app.get(
    '/health',
    {
      schema: {
        response: {
          '2xx': healthSchema,
          503: healthSchema,
        },
      },
    },
    async (_req, reply) => {
      const h = core.health();
      return reply.code(h.ok ? 200 : 503).send(h);
    },
  );

  app.get('/audit', { schema: { response: { 200: auditSchema, ...errorResponses } } }, async () => core.audit());

  app.post(
    '/generator',
    {
      schema: {
        body: {
          type: 'object',
          required: ['rate', 'total'],
          additionalProperties: false,
          properties: { rate: { type: 'integer', minimum: 0, maximum: 1_000_000 }, total: { type: 'integer', minimum: 0, maximum: 0x7fffffff } },
        },
        response: { 200: pacerStatus, ...errorResponses },
      },
    },
    async (req) => core.setGenerator(req.body as { rate: number; total: number }),
  );

  app.post(
    '/sender',
    {
      schema: {
        body: {
          type: 'object',
          required: ['rate', 'total', 'minUser', 'maxUser'],
          additionalProperties: false,
          properties: {
            rate: { type: 'integer', minimum: 0, maximum: 100_000 },
            total: { type: 'integer', minimum: 0, maximum: 0x7fffffff },
            users: { type: 'integer', minimum: 1, maximum: 16, default: 3 },
            minUser: u32,
            maxUser: u32,
            amount: { type: 'integer', minimum: 1, maximum: 0xffffffff, default: 1000 },
          },
        },
        response: { 200: pacerStatus, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body as { rate: number; total: number; users?: number; minUser: number; maxUser: number; amount?: number };
      return core.setSender({ rate: b.rate, total: b.total, users: b.users ?? 3, minUser: b.minUser, maxUser: b.maxUser, amount: b.amount ?? 1000 });
    },
  );

  return app;
}

const healthSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    pid: { type: 'integer' },
    uptimeSeconds: { type: 'integer' },
    connections: { type: 'integer' },
    workerDeaths: { type: 'integer' },
    handOversDropped: { type: 'integer' },
    workers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: { type: 'integer' },
          pid: { type: 'integer' },
          alive: { type: 'boolean' },
          connections: { type: 'integer' },
          restarts: { type: 'integer' },
          handedOver: { type: 'integer' },
          adopted: { type: 'integer' },
        },
      },
    },
  },
} as const;

const int = { type: 'integer' } as const;
const auditSchema = {
  type: 'object',
  properties: {
    generator: {
      type: 'object',
      properties: {
        generated: int,
        generatedAmount: int,
        won: int,
        wonAmount: int,
        inQueues: int,
        inQueuesAmount: int,
        lostWithWorkers: int,
        lostAmount: int,
        missed: int,
        reconciles: { type: 'boolean' },
        status: { ...pacerStatus, nullable: true },
      },
    },
    sender: {
      type: 'object',
      properties: {
        sent: int,
        sentAmount: int,
        claims: int,
        claimed: int,
        claimedAmount: int,
        remainingAmount: int,
        open: int,
        openAmount: int,
        missed: int,
        reconciles: { type: 'boolean' },
        status: { ...pacerStatus, nullable: true },
      },
    },
    workerDeaths: int,
  },
} as const;
