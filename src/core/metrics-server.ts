import Fastify, { type FastifyInstance } from 'fastify';
import bearerAuth from '@fastify/bearer-auth';
import type { BerthMetrics } from './metrics.js';

/**
 * /metrics on a bind of its own: without a token on METRICS_PORT, for a Prometheus that scrapes over
 * a private network (it serves nothing else, so the API itself stays behind its token); or, for a
 * consumer-only process that has no API, on HOST:PORT behind the API token, with /healthz.
 */
export async function startMetricsServer(metrics: BerthMetrics, host: string, port: number, token?: string): Promise<FastifyInstance> {
  const app = Fastify();
  if (token) {
    app.get('/healthz', async () => ({ status: 'ok' }));
    await app.register(async (scope) => {
      await scope.register(bearerAuth, { keys: new Set([token]) });
      scope.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
    });
  } else {
    app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }
  await app.listen({ host, port });
  return app;
}
