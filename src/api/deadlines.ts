import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's deadline when it is not the API's default (HANDLER_TIMEOUT_MS). */
    deadlineMs?: number;
  }
}

/**
 * One deadline per request: a handler still waiting when its time is up (a Redis that hangs with
 * its connection open) is answered 503 by the error handler, as Fastify's FST_ERR_HANDLER_TIMEOUT.
 *
 * Not Fastify's own `handlerTimeout`: a POST's request stream closes once its body is read, and
 * Fastify takes that close for the client going away, so it clears the timer of every request with
 * a body (fastify/fastify#6725, still open in 5.12.8): no POST had a deadline
 * (test/e2e/redis-outage.test.ts). It also cost each request an AbortController, a timer and an
 * AbortError with a captured stack, 8–10% of a webhook delivery's CPU (docs/benchmarks.md).
 * Here each request costs one entry in a set, swept by one timer every `tickMs`; a deadline fires
 * at most one tick late. The handler is not stopped: what it does after its 503 lands or fails on
 * its own (a retried delivery or idempotent submit is a no-op if it landed).
 */
export function installDeadlines(app: FastifyInstance, defaultMs: number, tickMs = 250): void {
  const open = new Set<{ due: number; expire: () => void }>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const entry of open) {
      if (entry.due > now) continue;
      open.delete(entry);
      entry.expire();
    }
  }, tickMs).unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  app.addHook('onRoute', (route) => {
    const ms = route.config?.deadlineMs ?? defaultMs;
    const handler = route.handler;
    // Only handlers that return a promise: callback-style ones (plugins' static files) answer on their own.
    route.handler = function (this: FastifyInstance, request, reply) {
      const result = handler.call(this, request, reply) as unknown;
      if (!(result instanceof Promise)) return result;
      return new Promise((resolve, reject) => {
        let expired = false;
        const entry = {
          due: Date.now() + ms,
          expire: () => {
            expired = true;
            reject(new errorCodes.FST_ERR_HANDLER_TIMEOUT(ms, route.url));
          },
        };
        open.add(entry);
        result.then(
          (value) => {
            open.delete(entry);
            resolve(value);
          },
          (error: unknown) => {
            open.delete(entry);
            if (expired) lateFailure(request, error);
            else reject(error);
          },
        );
      });
    } as typeof handler;
  });
}

function lateFailure(request: FastifyRequest, error: unknown): void {
  request.log.warn({ err: error }, 'a request answered 503 at its deadline failed afterwards');
}
