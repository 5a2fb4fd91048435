import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditTrail } from '../../core/audit.js';

export interface AuditRoutesOptions {
  audit: AuditTrail;
}

const time = z
  .string()
  .max(40)
  .refine((text) => !Number.isNaN(Date.parse(text)), 'an ISO 8601 time, e.g. 2026-12-01T00:00:00Z')
  .transform((text) => Date.parse(text));

/**
 * GET /api/audit: the audit trail, newest first (a task's story with `task`, a time range with
 * `since`/`until`); `format=jsonl` exports it oldest first as JSON lines, one entry each.
 */
export async function auditRoutes(app: FastifyInstance, opts: AuditRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get(
    '/audit',
    {
      schema: {
        querystring: z.strictObject({
          task: z.string().min(1).max(200).optional(),
          since: time.optional(),
          until: time.optional(),
          limit: z.coerce.number().int().min(1).max(10_000).default(100),
          format: z.enum(['json', 'jsonl']).default('json'),
        }),
      },
    },
    async (request, reply) => {
      const { task, since, until, limit, format } = request.query;
      const entries = await opts.audit.read({
        ...(task ? { task } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        limit,
        order: format === 'jsonl' ? 'oldest' : 'newest',
      });
      if (format === 'jsonl') return reply.type('application/x-ndjson').send(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
      return { entries };
    },
  );
}
