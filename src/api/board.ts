import { timingSafeEqual, createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TaskQueue } from '../core/queue.js';
import type { ReportQueue } from '../core/reports.js';

export const BOARD_PREFIX = '/admin/queues';

export interface BoardOptions {
  queue: TaskQueue;
  /** The outbound GitHub queue, shown beside the tasks when reporting is on. */
  reportQueue?: ReportQueue;
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
 * Board actions berth refuses, whoever asks: they would inject a job or rewrite a queued task's
 * data (any BullMQ options, another repository or installation), wipe every task at once (running
 * ones included), or override the operator's concurrency and rate limits. Retry, promote, clean,
 * remove and every view keep working.
 */
const REFUSED: Array<{ method: string; path: RegExp; what: string }> = [
  { method: 'POST', path: /^\/api\/queues\/[^/]+\/add$/, what: 'adding jobs (submit tasks through POST /api/tasks)' },
  { method: 'PATCH', path: /^\/api\/queues\/[^/]+\/[^/]+\/update-data$/, what: "editing a job's data" },
  { method: 'PUT', path: /^\/api\/queues\/[^/]+\/(empty|obliterate)$/, what: 'emptying or obliterating a queue' },
  { method: 'PUT', path: /^\/api\/queues\/[^/]+\/(concurrency|rate-limit|rate-limit\/release)$/, what: 'changing concurrency or rate limits (operator config: GLOBAL_CONCURRENCY)' },
  { method: 'PATCH', path: /^\/api\/queues\/[^/]+\/job-schedulers\//, what: 'editing job schedulers' },
];

export function refusedBoardAction(method: string, url: string): string | null {
  const path = url.split('?')[0]!.slice(BOARD_PREFIX.length);
  const hit = REFUSED.find((r) => r.method === method && r.path.test(path));
  return hit ? hit.what : null;
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
    const refused = refusedBoardAction(request.method, request.url);
    if (refused) return reply.status(403).send({ error: 'Forbidden', message: `berth's board does not allow ${refused}` });
  });
  denyFraming(scope);
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BOARD_PREFIX);
  createBullBoard({
    queues: [
      new BullMQAdapter(options.queue, { readOnlyMode: options.readOnly, allowRetries: !options.readOnly, description: 'agent tasks; each attempt runs in its own container' }),
      ...(options.reportQueue ? [new BullMQAdapter(options.reportQueue, { readOnlyMode: options.readOnly, allowRetries: !options.readOnly, description: 'outbound GitHub calls: reactions, check runs, comments' })] : []),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'berth' } },
  });
  await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PREFIX });
}
