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
