import { createServer } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import type { CancelBook } from '../core/cancel.js';
import type { Config } from '../core/config.js';
import type { TaskQueue } from '../core/queue.js';
import { requireBearerToken } from './auth.js';
import { installErrorHandler } from './errors.js';
import { healthRoutes, type ReadinessProbe } from './routes/health.js';
import { taskRoutes } from './routes/tasks.js';
import { auditRoutes } from './routes/audit.js';
import type { AuditTrail } from '../core/audit.js';
import { scheduleRoutes } from './routes/schedules.js';
import { kindRoutes, type KindsConfig } from './routes/kinds.js';
import type { ScheduleBook } from '../core/schedules.js';
import type { Queue } from 'bullmq';
import type { SubmitConfig } from './tasks/submit.js';
import type { WebhookRules } from '../core/webhook-rules.js';
import type { Redis } from 'ioredis';
import { githubWebhookRoute } from './webhooks/route.js';
import { installDeadlines } from './deadlines.js';
import { boardCredentialsValid, boardPlugin, denyFraming } from './board.js';
import type { BerthMetrics, MetricSources } from '../core/metrics.js';
import type { GithubReports } from '../github/report-queue.js';
import type { Capacity } from '../core/backpressure.js';
import type { TaskIndex } from '../core/task-index.js';
import type { ActorRoles } from '../github/permissions.js';
import type { PullHeads } from '../github/pull-heads.js';

export type ApiConfig = SubmitConfig &
  KindsConfig &
  Pick<
    Config,
    | 'MAX_QUEUED_PER_REPO'
    | 'MAX_QUEUED_TASKS'
    | 'FAIR_START'
    | 'API_TOKEN'
    | 'BODY_LIMIT'
    | 'WEBHOOK_BODY_LIMIT'
    | 'REQUEST_TIMEOUT'
    | 'WORKER_STOP_GRACE'
    | 'BOARD_USER'
    | 'BOARD_PASSWORD'
    | 'BOARD_READ_ONLY'
    | 'webhookRules'
  >;

/** Longest a handler may take; the cancel route waits for a container and gets its own. */
export const HANDLER_TIMEOUT_MS = 5_000;

export interface RegisteredRoute {
  method: string;
  url: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route, as registered: what the auth tests enumerate. */
    berthRoutes: RegisteredRoute[];
  }
}

export interface ApiDeps {
  config: ApiConfig;
  queue: TaskQueue;
  cancels: CancelBook;
  probes: ReadinessProbe[];
  logger?: Logger | false;
  /** Served at /metrics behind the API token when given. */
  metrics?: { metrics: BerthMetrics; sources: MetricSources };
  /** GitHub webhooks; the route exists only when at least one secret is configured. */
  github?: { secrets: string[]; rules: WebhookRules; redis: Redis; appId?: string; roles?: ActorRoles | null; heads?: PullHeads | null };
  /** Outbound GitHub reports (check runs, 👀); null or absent without App credentials. */
  reports?: GithubReports | null;
  /** Queue caps (MAX_QUEUED_TASKS, MAX_QUEUED_PER_REPO). */
  capacity?: Capacity;
  /** The repository/kind index the task list's filters read. */
  index?: TaskIndex;
  /** Scheduled agents: their state and the queue of their ticks (GET /api/schedules, pause, resume; the board). */
  schedules?: { book: ScheduleBook; queue: Queue };
  /** Who asked for what, who approved, tokens, egress, GitHub writes (GET /api/audit). */
  audit?: AuditTrail;
}

/** Builds the HTTP app without listening, so tests drive the same app through inject or a port. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: (deps.logger || undefined) as FastifyBaseLogger | undefined,
    // One line per request instead of Fastify's two, and none for a probe that answered well
    // (a /readyz poll every few seconds would bury everything else).
    disableRequestLogging: true,
    bodyLimit: deps.config.BODY_LIMIT,
    return503OnClosing: true,
    // A client that trickles its request (slowloris) is cut off; an idle socket is closed. Node
    // enforces requestTimeout on its connection-check interval (30 s unless set at creation), so
    // the server is made here with both.
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: deps.config.REQUEST_TIMEOUT,
          headersTimeout: deps.config.REQUEST_TIMEOUT,
          connectionsCheckingInterval: Math.max(250, Math.min(5_000, Math.floor(deps.config.REQUEST_TIMEOUT / 4))),
          keepAliveTimeout: 5_000,
        },
        handler,
      ),
    requestTimeout: deps.config.REQUEST_TIMEOUT,
    keepAliveTimeout: 5_000,
  });
  app.addHook('onResponse', async (request, reply) => {
    const path = request.url.split('?')[0];
    if (reply.statusCode < 400 && (path === '/healthz' || path === '/readyz' || path === '/metrics')) return;
    request.log.info({ method: request.method, url: path, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app, { onRedisFull: () => deps.metrics?.metrics.redisFull.inc() });
  // Before any route: every route registered after this gets its deadline.
  installDeadlines(app, HANDLER_TIMEOUT_MS);
  const routes: RegisteredRoute[] = [];
  app.decorate('berthRoutes', routes);
  app.addHook('onRoute', (route) => {
    for (const method of ([] as string[]).concat(route.method)) routes.push({ method, url: route.url });
  });
  // JSON only: Fastify's built-in text/plain parser would hand strings to handlers expecting objects.
  app.removeContentTypeParser('text/plain');

  // The OpenAPI document is generated from the same zod schemas the routes validate with.
  await app.register(swagger, {
    openapi: {
      info: { title: 'berth', version: '0.1.0', description: 'Agent tasks in ephemeral, hardened Docker containers. See docs/api.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(async (scope) => {
    // The UI and the JSON document sit behind the same credentials as the board.
    const credentials = { apiToken: deps.config.API_TOKEN, user: deps.config.BOARD_USER, password: deps.config.BOARD_PASSWORD };
    denyFraming(scope);
    scope.addHook('onRequest', async (request, reply) => {
      if (boardCredentialsValid(request, credentials)) return;
      return reply
        .header('www-authenticate', 'Basic realm="berth", charset="UTF-8"')
        .status(401)
        .send({ error: 'Unauthorized', message: 'log in (Basic) or send Authorization: Bearer <API_TOKEN>' });
    });
    await scope.register(swaggerUi, { routePrefix: '/docs' });
  });
  await app.register(healthRoutes, { probes: deps.probes });
  await app.register(
    async (api) => {
      await requireBearerToken(api, [deps.config.API_TOKEN]);
      await api.register(taskRoutes, {
        queue: deps.queue,
        cancels: deps.cancels,
        config: deps.config,
        cancelWaitMs: deps.config.WORKER_STOP_GRACE + 5_000,
        ...(deps.capacity ? { capacity: deps.capacity } : {}),
        ...(deps.index ? { index: deps.index } : {}),
        ...(deps.audit ? { audit: deps.audit } : {}),
      });
      await api.register(kindRoutes, { config: deps.config });
      if (deps.audit) await api.register(auditRoutes, { audit: deps.audit });
      if (deps.schedules) await api.register(scheduleRoutes, { schedules: deps.config.webhookRules.schedules, ...deps.schedules });
    },
    { prefix: '/api' },
  );
  if (deps.metrics) {
    const { metrics, sources } = deps.metrics;
    metrics.observe(sources);
    await app.register(async (scope) => {
      await requireBearerToken(scope, [deps.config.API_TOKEN]);
      scope.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
    });
  }
  await app.register(async (scope) =>
    boardPlugin(scope, {
      queue: deps.queue,
      reportQueue: deps.reports?.queue,
      scheduleQueue: deps.schedules?.queue,
      apiToken: deps.config.API_TOKEN,
      user: deps.config.BOARD_USER,
      password: deps.config.BOARD_PASSWORD,
      readOnly: deps.config.BOARD_READ_ONLY,
    }),
  );
  if (deps.github && deps.github.secrets.length > 0) {
    const github = deps.github;
    await app.register(async (scope) =>
      githubWebhookRoute(scope, {
        ...github,
        queue: deps.queue,
        cancels: deps.cancels,
        config: deps.config,
        reports: deps.reports ?? null,
        bodyLimit: deps.config.WEBHOOK_BODY_LIMIT,
        ...(deps.capacity ? { capacity: deps.capacity } : {}),
        ...(deps.index ? { index: deps.index } : {}),
        ...(deps.audit ? { audit: deps.audit } : {}),
      }),
    );
  }
  return app;
}
