// The controller's HTTP surface. build() returns the Fastify app without listening: tests inject().
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { AGENT_SECOND_FIELDS, numberProperties } from '../common/fields.ts';
import { baseApp, errorResponses, qpsBodySchema } from '../common/http.ts';
import { CHART_NAMES } from './charts.ts';
import type { Controller } from './controller.ts';
import { dashboardHtml } from './dashboard.ts';
import { REPORT_FILE } from './report.ts';
import { chartsScript } from './web/script.ts';

const idPattern = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const num = { type: 'number', minimum: 0 } as const;
const int = { type: 'integer' } as const;

const registerBody = {
  type: 'object',
  required: ['id', 'controlUrl'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: idPattern },
    controlUrl: { type: 'string', pattern: '^https?://[^\\s/]+(/.*)?$', maxLength: 200 },
    users: {
      type: 'object',
      required: ['first', 'count'],
      additionalProperties: false,
      properties: { first: { type: 'integer', minimum: 0 }, count: { type: 'integer', minimum: 0 } },
    },
    totalUsers: { type: 'integer', minimum: 1 },
    workers: { type: 'integer', minimum: 1 },
    sourceIps: { type: 'integer', minimum: 0 },
    /** The --source-ip values as given (addresses or ranges A-B), shown in the run's report. */
    sourceAddresses: { type: 'array', maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 64 } },
    rule: { type: 'string', enum: ['modulo', 'window'] },
    mode: { type: 'string', enum: ['spread', 'burst'] },
    pid: { type: 'integer', minimum: 0 },
    qpsChanges: {
      type: 'array',
      maxItems: 1000,
      items: { type: 'object', required: ['at', 'qps'], additionalProperties: false, properties: { at: { type: 'integer', minimum: 0 }, qps: { type: 'integer', minimum: 0 } } },
    },
  },
} as const;

const sampleBody = {
  type: 'object',
  required: ['second'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: idPattern },
    second: { type: 'integer', minimum: 0 },
    ...numberProperties([...AGENT_SECOND_FIELDS, 'connections'], { minimum: 0 }),
    qps: { type: ['integer', 'null'], minimum: 0 },
    p50Ms: num,
    p99Ms: num,
    maxMs: num,
    lateP99Ms: num,
    offsetMs: { type: ['number', 'null'] },
    uncertaintyMs: { type: ['number', 'null'] },
    hist: { type: 'string', maxLength: 65536 },
  },
} as const;

const agentSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    controlUrl: { type: 'string' },
    users: { type: 'object', nullable: true, properties: { first: int, count: int } },
    totalUsers: { type: 'integer', nullable: true },
    workers: { type: 'integer', nullable: true },
    status: { type: 'string', enum: ['registered', 'active', 'lost'] },
    samples: int,
    lastSampleSecond: { type: 'integer', nullable: true },
    lastSampleAgoS: { type: 'number', nullable: true },
  },
} as const;

/** The answer to a registration: the agent, and the first second the controller still takes samples for (re-push from there). */
const registeredSchema = {
  type: 'object',
  properties: { ...agentSchema.properties, resendFrom: { type: 'integer', nullable: true } },
} as const;

const qpsChangeSchema = {
  type: 'object',
  properties: {
    qps: int,
    at: int,
    requestedAt: int,
    agents: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, ok: { type: 'boolean' }, error: { type: 'string' } } } },
    learnedFrom: { type: 'string' },
  },
} as const;

export function build(ctl: Controller): FastifyInstance {
  const app = baseApp({ token: ctl.config.token });

  app.post(
    '/agents',
    { schema: { body: registerBody, response: { 200: registeredSchema, 201: registeredSchema, ...errorResponses } } },
    async (req, reply) => {
      const { created, resendFrom } = ctl.register(req.body as never);
      const body = ctl.agentList().find((a) => a.id === (req.body as { id: string }).id);
      return reply.code(created ? 201 : 200).send({ ...body, resendFrom });
    },
  );

  app.get('/agents', { schema: { response: { 200: { type: 'object', properties: { agents: { type: 'array', items: agentSchema } } } } } }, async () => ({
    agents: ctl.agentList(),
  }));

  app.post(
    '/agents/:id/samples',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: idPattern } } },
        body: sampleBody,
        response: { 200: { type: 'object', properties: { accepted: { type: 'boolean' }, late: { type: 'boolean' } } }, ...errorResponses },
      },
    },
    async (req) => ctl.sample((req.params as { id: string }).id, req.body as never),
  );

  app.post(
    '/qps',
    {
      schema: {
        body: qpsBodySchema(100_000_000),
        response: { 200: qpsChangeSchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body as { qps: number; at?: number };
      return ctl.setQps(b.qps, b.at);
    },
  );

  app.get(
    '/qps',
    {
      schema: {
        response: { 200: { type: 'object', properties: { qps: { type: 'integer', nullable: true }, at: { type: 'integer', nullable: true }, history: { type: 'array', items: qpsChangeSchema } } } },
      },
    },
    async () => ({ ...ctl.currentQps(), history: ctl.qpsHistory }),
  );

  const runItem = {
    type: 'object',
    properties: {
      id: { type: 'string' },
      startedAt: { type: 'string', nullable: true },
      stoppedAt: { type: 'string', nullable: true },
      current: { type: 'boolean' },
      report: { type: 'boolean' },
    },
  } as const;
  app.get('/runs', { schema: { response: { 200: { type: 'object', properties: { runs: { type: 'array', items: runItem } } } } } }, async () => ({ runs: ctl.listRuns() }));

  app.post('/runs', { schema: { response: { 201: { type: 'object', properties: { id: { type: 'string' }, dir: { type: 'string' } } }, ...errorResponses } } }, async (_req, reply) => {
    if (ctl.run && !ctl.run.stopped) await ctl.stopRun();
    const run = ctl.startRun();
    return reply.code(201).send({ id: run.id, dir: run.dir });
  });

  app.post(
    '/runs/:id/stop',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{8}-[0-9]{6}(-[0-9]+)?$' } } },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              dir: { type: 'string' },
              charts: { type: 'array', items: { type: 'string' } },
              report: { type: 'string' },
              summary: { type: 'object', additionalProperties: true },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => ctl.stopRun((req.params as { id: string }).id),
  );

  app.get(
    '/runs/:id/charts/:name',
    { schema: { params: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string', enum: CHART_NAMES.map((n) => `${n}.png`) } } } } },
    async (req, reply) => {
      const { id, name } = req.params as { id: string; name: string };
      const path = ctl.runFile(id, `charts/${name}`);
      return reply.type('image/png').header('cache-control', 'no-store').send(readFileSync(path));
    },
  );

  app.get('/runs/:id/report.html', async (req, reply) => {
    const path = ctl.runFile((req.params as { id: string }).id, REPORT_FILE);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(readFileSync(path));
  });

  const healthSchema = {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      run: { type: 'string', nullable: true },
      agents: { type: 'object', properties: { total: int, active: int, lost: { type: 'array', items: { type: 'string' } } } },
      stub: { type: 'object', nullable: true, properties: { url: { type: 'string' }, ok: { type: 'boolean' }, error: { type: 'string', nullable: true } } },
    },
  } as const;
  app.get('/health', { schema: { response: { 200: healthSchema, 503: healthSchema } } }, async (_req, reply) => {
    const h = ctl.health();
    return reply.code(h.ok ? 200 : 503).send(h);
  });

  app.get(
    '/series',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: {
              run: { type: 'object', nullable: true, properties: { id: { type: 'string' }, startSecond: int, stopped: { type: 'boolean' } } },
              qps: { type: 'object', properties: { qps: { type: 'integer', nullable: true }, at: { type: 'integer', nullable: true } } },
              history: { type: 'array', items: qpsChangeSchema },
              agents: { type: 'array', items: agentSchema },
              // Rows as in series.ndjson without the histogram: nested counters, passed through as they are.
              rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
              tokenRequired: { type: 'boolean' },
            },
          },
        },
      },
    },
    async () => ctl.snapshot(),
  );

  // ---- live dashboard ---------------------------------------------------------------------------
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(dashboardHtml()));
  app.get('/assets/charts.js', async (_req, reply) => reply.type('application/javascript').header('cache-control', 'max-age=3600').send(chartsScript()));
  app.get('/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const sub = {
      send(event: string, data: unknown) {
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
    };
    sub.send('init', ctl.snapshot());
    ctl.subscribers.add(sub);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), 15000);
    req.raw.on('close', () => {
      clearInterval(beat);
      ctl.subscribers.delete(sub);
    });
  });

  return app;
}
