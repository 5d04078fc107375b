// Fastify conventions shared by the stub, the agent's control endpoint and the controller:
// strict JSON validation (no type coercion of bodies), one error shape with stable codes, and
// bearer-token auth on state-changing routes.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { bearerMatches } from './auth.ts';
import { CodedError, HttpError } from './errors.ts';

export const errorSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

/** Response schemas for the error statuses every route may answer. */
export const errorResponses = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema, 413: errorSchema, 415: errorSchema, 503: errorSchema } as const;

const reasons: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 500: 'Internal Server Error', 503: 'Service Unavailable' };

function codeFor(status: number): string {
  if (status === 401) return HttpError.UNAUTHORIZED;
  if (status === 404) return HttpError.NOT_FOUND;
  if (status === 409) return HttpError.CONFLICT;
  if (status === 503) return HttpError.UNAVAILABLE;
  return status < 500 ? HttpError.BAD_REQUEST : HttpError.INTERNAL;
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ statusCode: status, code, error: reasons[status] ?? 'Error', message });
}

/** A Fastify app with the shared conventions. `token`, when set, guards every non-GET route. */
export function baseApp(opts: { token?: string; logger?: boolean; bodyLimit?: number } = {}): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof CodedError) return sendError(reply, err.statusCode, err.code, err.message);
    // Fastify names the field: "body/rate must be integer", "body must have required property 'rate'".
    if (err.validation) return sendError(reply, 400, HttpError.BAD_REQUEST, err.message);
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return sendError(reply, 400, HttpError.BAD_REQUEST, `body is not valid JSON: ${err.message}`);
    }
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return sendError(reply, 400, HttpError.BAD_REQUEST, 'body is empty: send a JSON object');
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, HttpError.BAD_REQUEST, `${err.message}: send Content-Type: application/json`);
    if (status >= 500) app.log.error(err);
    return sendError(reply, status, codeFor(status), err.message);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, HttpError.NOT_FOUND, `no route ${req.method} ${req.url.split('?')[0]}`));
  if (opts.token) {
    const token = opts.token;
    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
      if (!bearerMatches(req.headers.authorization, token)) {
        return sendError(reply, 401, HttpError.UNAUTHORIZED, req.headers.authorization ? 'wrong bearer token' : 'missing Authorization: Bearer <token> header');
      }
    });
  }
  return app;
}

/** Body of POST /qps, on the agent and on the controller: `{qps, at?}` (docs/reference.md). */
export function qpsBodySchema(maxQps: number) {
  return {
    type: 'object',
    required: ['qps'],
    additionalProperties: false,
    properties: {
      qps: { type: 'integer', minimum: 0, maximum: maxQps },
      at: { type: 'integer', minimum: 0, maximum: 2 ** 40 },
    },
  } as const;
}
