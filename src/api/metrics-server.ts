import Fastify, { type FastifyInstance } from 'fastify';
import type { BerthMetrics } from '../core/metrics.js';

/**
 * /metrics on a bind of its own (METRICS_PORT), without a token, for a Prometheus that scrapes
 * over a private network. It serves nothing else, so the API itself stays behind its token.
 */
export async function startMetricsServer(metrics: BerthMetrics, host: string, port: number): Promise<FastifyInstance> {
  const app = Fastify();
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  await app.listen({ host, port });
  return app;
}
