// The agent's control endpoint (docs/reference.md). build() returns the Fastify app without listening:
// tests use inject(). POST /qps needs the bearer token when one is set (baseApp's hook).
import type { FastifyInstance } from 'fastify';
import { CodedError, HttpError } from '../common/errors.ts';
import { AGENT_SECOND_FIELDS, numberProperties } from '../common/fields.ts';
import { baseApp, errorResponses, qpsBodySchema } from '../common/http.ts';
import { CONTENT_TYPE as PROMETHEUS_TYPE } from '../common/prometheus.ts';
import type { SecondStatsOut } from './stats.ts';

export interface ControlDeps {
  token?: string;
  totalUsers: number;
  /** Synchronised time in ms. */
  now: () => number;
  /** Schedules the fleet QPS `qps` from epoch second `at` on. */
  setQps: (qps: number, at: number) => void;
  qps: () => number;
  stats: (since: number | undefined) => { id: string; connections: number; qps: number; offsetMs: number; seconds: SecondStatsOut[] } & Record<string, unknown>;
  health: () => { ok: boolean } & Record<string, unknown>;
  metrics: () => string;
}

const num = { type: 'number' } as const;
const secondSchema = {
  type: 'object',
  properties: {
    second: { type: 'integer' },
    ...numberProperties(AGENT_SECOND_FIELDS),
    p50Ms: num,
    p99Ms: num,
    maxMs: num,
    lateP99Ms: num,
  },
} as const;

export function build(deps: ControlDeps): FastifyInstance {
  const app = baseApp({ token: deps.token, bodyLimit: 16 * 1024 });

  app.post(
    '/qps',
    {
      schema: {
        body: qpsBodySchema(deps.totalUsers),
        response: {
          200: { type: 'object', properties: { qps: { type: 'integer' }, at: { type: 'integer' }, previous: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const body = req.body as { qps: number; at?: number };
      const current = Math.floor(deps.now() / 1000);
      // The current second is partly fired already under the old QPS: the earliest switch is the next.
      const at = body.at ?? current + 1;
      if (at <= current) {
        throw new CodedError(400, HttpError.BAD_REQUEST, `body/at must be an epoch second after the current one (${current}), got ${at}: it is in the past`);
      }
      const previous = deps.qps();
      deps.setQps(body.qps, at);
      return { qps: body.qps, at, previous };
    },
  );

  app.get(
    '/stats',
    {
      schema: {
        querystring: { type: 'object', properties: { since: { type: 'string', pattern: '^[0-9]{1,15}$' } }, additionalProperties: false },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              connections: { type: 'integer' },
              qps: { type: 'integer' },
              offsetMs: num,
              uncertaintyMs: num,
              clock: { type: 'string' },
              rate: num,
              seconds: { type: 'array', items: secondSchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { since } = req.query as { since?: string };
      return deps.stats(since === undefined ? undefined : Number(since));
    },
  );

  app.get('/health', async (_req, reply) => {
    const h = deps.health();
    return reply.code(h.ok ? 200 : 503).send(h);
  });

  app.get('/metrics', async (_req, reply) => reply.type(PROMETHEUS_TYPE).send(deps.metrics()));

  return app;
}
