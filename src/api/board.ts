import { timingSafeEqual, createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Queue } from 'bullmq';
import type { TaskQueue } from '../core/queue.js';
import type { ReportQueue } from '../github/report-queue.js';

export const BOARD_PREFIX = '/admin/queues';

export interface BoardOptions {
  queue: TaskQueue;
  /** The outbound GitHub queue, shown beside the tasks when reporting is on. */
  reportQueue?: ReportQueue;
  /** The schedules' ticks, shown read-only: a tick is decided by berth, not retried by hand. */
  scheduleQueue?: Queue;
  apiToken: string;
  user: string;
  /** Basic-auth password; unset means the API token is the password. */
  password?: string;
  readOnly: boolean;
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** Bearer API token, or Basic user + password (what a browser sends after the prompt). */
export function boardCredentialsValid(request: FastifyRequest, options: Pick<BoardOptions, 'apiToken' | 'user' | 'password'>): boolean {
  const header = request.headers.authorization ?? '';
  if (header.startsWith('Bearer ')) return same(header.slice(7), options.apiToken);
  if (!header.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const userOk = same(decoded.slice(0, colon), options.user);
  const passwordOk = same(decoded.slice(colon + 1), options.password ?? options.apiToken);
  return userOk && passwordOk;
}

/**
 * The board actions berth permits, by the route Fastify matched (never the raw URL: the router
 * decodes `%61dd` to `add`, so a pattern over `request.url` is talked around by any spelling).
 * Every view is a GET. Everything else — adding jobs, editing a job's data, delay or priority,
 * emptying or obliterating a queue, concurrency and rate limits, job schedulers — is refused:
 * it would inject work, rewrite a queued task (another repository, any BullMQ option), wipe
 * running tasks, or override the operator's config.
 */
const PERMITTED: ReadonlySet<string> = new Set([
  'PUT /api/queues/pause',
  'PUT /api/queues/resume',
  'PUT /api/queues/:queueName/retry/:queueStatus',
  'PUT /api/queues/:queueName/promote',
  'PUT /api/queues/:queueName/clean/:queueStatus',
  'PUT /api/queues/:queueName/pause',
  'PUT /api/queues/:queueName/resume',
  'PUT /api/queues/:queueName/:jobId/retry',
  'PUT /api/queues/:queueName/:jobId/clean',
  'PUT /api/queues/:queueName/:jobId/promote',
]);

/**
 * Why berth refuses a board request, or null when it is permitted. `route` is the pattern the
 * router matched (`request.routeOptions.url`), undefined when none did.
 */
export function refusedBoardAction(method: string, route: string | undefined): string | null {
  const m = method.toUpperCase();
  if (route === undefined) return m === 'GET' || m === 'HEAD' ? null : 'requests that match no board route';
  if (!route.startsWith(BOARD_PREFIX)) return 'requests outside the board';
  if (m === 'GET' || m === 'HEAD') return null;
  const pattern = route.slice(BOARD_PREFIX.length);
  if (PERMITTED.has(`${m} ${pattern}`)) return null;
  return `${m} ${pattern} (berth permits views, retry, promote, clean, remove, pause and resume; tasks are submitted through POST /api/tasks)`;
}

/** Board and API docs pages may not be framed (clickjacking a logged-in operator's retry). */
export function denyFraming(scope: FastifyInstance): void {
  scope.addHook('onSend', async (_request, reply) => {
    reply.header('x-frame-options', 'DENY');
    reply.header('content-security-policy', "frame-ancestors 'none'");
  });
}

/**
 * Bull Board has no auth of its own. It lives in its own encapsulated scope whose onRequest hook
 * runs before every board route (page, assets and JSON API alike), so nothing is reachable
 * anonymously. Bull Board's retry re-queues a failed job with attemptsMade kept, which berth runs
 * as the next attempt in a new container.
 */
export async function boardPlugin(scope: FastifyInstance, options: BoardOptions): Promise<void> {
  scope.addHook('onRequest', async (request, reply) => {
    if (boardCredentialsValid(request, options)) return;
    return reply
      .header('www-authenticate', 'Basic realm="berth board", charset="UTF-8"')
      .status(401)
      .send({ error: 'Unauthorized', message: 'log in (Basic) or send Authorization: Bearer <API_TOKEN>' });
  });
  scope.addHook('onRequest', async (request, reply) => {
    const refused = refusedBoardAction(request.method, request.routeOptions.url);
    if (refused) return reply.status(403).send({ error: 'Forbidden', message: `berth's board does not allow ${refused}` });
  });
  denyFraming(scope);
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BOARD_PREFIX);
  createBullBoard({
    queues: [
      new BullMQAdapter(options.queue, {
        readOnlyMode: options.readOnly,
        allowRetries: !options.readOnly,
        description: 'agent tasks; each attempt runs in its own container',
      }),
      ...(options.reportQueue
        ? [
            new BullMQAdapter(options.reportQueue, {
              readOnlyMode: options.readOnly,
              allowRetries: !options.readOnly,
              description: 'outbound GitHub calls: reactions, check runs, comments',
            }),
          ]
        : []),
      ...(options.scheduleQueue
        ? [
            new BullMQAdapter(options.scheduleQueue, {
              readOnlyMode: true,
              description: 'schedule ticks (rules file `schedules`); each becomes at most one task',
            }),
          ]
        : []),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'berth' } },
  });
  await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PREFIX });
}
