import type { FastifyInstance } from 'fastify';

export interface ReadinessProbe {
  name: string;
  check: () => Promise<void>;
}

/** Unauthenticated by design: they reveal only "up" or which dependency is down. */
export async function healthRoutes(app: FastifyInstance, opts: { probes: ReadinessProbe[]; timeoutMs?: number }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const timeoutMs = opts.timeoutMs ?? 2000;
    const results = await Promise.all(
      opts.probes.map(async (probe) => {
        try {
          await withTimeout(probe.check(), timeoutMs);
          return { name: probe.name, ok: true };
        } catch {
          return { name: probe.name, ok: false };
        }
      }),
    );
    const down = results.filter((r) => !r.ok).map((r) => r.name);
    if (down.length > 0) return reply.status(503).send({ status: 'unavailable', unreachable: down, message: `${down.join(' and ')} not reachable` });
    return { status: 'ready' };
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
