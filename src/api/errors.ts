import type { FastifyError, FastifyInstance } from 'fastify';
import { isRedisUnavailable } from '../core/queue.js';
import { isRedisFull } from '../core/redis-memory.js';

/**
 * Client mistakes get their own status and a sentence that says what to fix; only berth's own
 * failures are 500, and those never echo internals.
 */
export function installErrorHandler(app: FastifyInstance, hooks: { onRedisFull?: () => void } = {}): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const problems = error.validation.map((v) => {
        const path = (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.');
        const where = path || (v.params as { issue?: { path?: unknown[] } })?.issue?.path?.join('.') || '';
        return `${error.validationContext ?? 'body'}${where ? `.${where}` : ''}: ${v.message}`;
      });
      return reply.status(400).send({ error: 'Bad Request', message: problems.join('; '), problems });
    }
    if (error.code === 'FST_ERR_HANDLER_TIMEOUT') {
      request.log.warn({ err: error }, 'a request ran past its deadline; answered 503');
      return reply
        .status(503)
        .header('retry-after', '5')
        .send({ error: 'Service Unavailable', message: 'berth could not answer in time (Redis slow or unreachable); retry in a few seconds' });
    }
    if (isRedisFull(error)) {
      hooks.onRedisFull?.();
      request.log.error({ err: error }, 'Redis is full (maxmemory); answered 503');
      return reply.status(503).header('retry-after', '30').send({
        error: 'Service Unavailable',
        message:
          "Redis is full (it reached its maxmemory) and refused the write; nothing was queued. An operator must free room: a shorter KEEP_COMPLETED, the board's Clean of finished tasks, or a larger maxmemory (berth doctor shows the figures).",
      });
    }
    if (isRedisUnavailable(error)) {
      request.log.warn({ err: error }, 'Redis unreachable; answered 503');
      return reply
        .status(503)
        .header('retry-after', '5')
        .send({ error: 'Service Unavailable', message: 'Redis is unreachable right now; nothing was queued. Retry in a few seconds.' });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.status(status).send({ error: httpReason(status), message: clientMessage(error) });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ error: 'Internal Server Error', message: 'berth failed to handle this request; see its logs' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
}

function clientMessage(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'request body is larger than the configured limit';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'send the body as application/json';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'the JSON body is empty';
    default:
      return error.message;
  }
}

function httpReason(status: number): string {
  return (
    (
      {
        400: 'Bad Request',
        503: 'Service Unavailable',
        401: 'Unauthorized',
        403: 'Forbidden',
        404: 'Not Found',
        405: 'Method Not Allowed',
        409: 'Conflict',
        413: 'Payload Too Large',
        415: 'Unsupported Media Type',
        429: 'Too Many Requests',
      } as Record<number, string>
    )[status] ?? 'Client Error'
  );
}
