import { createHash, createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import { budgetFor, type Config } from '../core/config.js';
import { NOTHING_SPENT, type Spend } from '../core/spend.js';
import { LABEL } from '../core/labels.js';
import type { WorkerTask } from '../core/task.js';
import { EGRESS_SOCKET, EGRESS_SOCKET_DIR } from '../egress/config.js';
import { signGrant, type Grant } from '../egress/credential.js';
import type { AttemptEgress } from '../egress/ledger.js';
import type { EgressProxySpec, Launcher } from './launcher/launcher.js';
import type { WorkloadEgress } from './launcher/spec.js';

export type EgressGateConfig = Pick<
  Config,
  | 'EGRESS'
  | 'EGRESS_HOSTS'
  | 'EGRESS_SETUP_HOSTS'
  | 'setupCommands'
  | 'EGRESS_PORTS'
  | 'EGRESS_ALLOW_PRIVATE'
  | 'EGRESS_NETWORKS'
  | 'EGRESS_MEMORY'
  | 'API_TOKEN'
  | 'QUEUE_NAME'
  | 'WORKER_IMAGE'
  | 'GITHUB_SERVER_URL'
  | 'GITHUB_API_URL'
  | 'WORKER_GITHUB_API_URL'
  | 'TASK_TIMEOUT'
  | 'LOG_LEVEL'
  | 'egress'
  | 'budgets'
  | 'prices'
>;

/** How long a list of over-budget attempts is reused: one look at the proxy serves every attempt watching. */
const OVER_BUDGET_CACHE_MS = 5_000;

/** The port the worker's entrypoint relays to the proxy's socket, on the worker's own loopback. */
export const RELAY_PORT = 3128;
/** How long after TASK_TIMEOUT a credential still works (a stop's grace, a clock apart). */
const CREDENTIAL_SLACK_MS = 10 * 60_000;

/**
 * berth's side of the egress proxy: the proxy's spec (from operator config only), its secrets
 * (derived from API_TOKEN, so every berth process of a deployment signs alike, across restarts,
 * with nothing stored), each attempt's signed grant, and the attempt's record afterwards.
 */
export class EgressGate {
  private current: EgressProxySpec;
  /** The worker image's id when the current spec was made: a rebuilt image under the same name is a new version. */
  private imageId: string | null = null;
  private readonly env: Record<string, string>;
  private readonly secret: string;
  private readonly overBudgetSeen = new Map<string, { at: number; attempts: Promise<Set<string>> }>();

  constructor(
    private readonly config: EgressGateConfig,
    private readonly launcher: Launcher,
    private readonly logger: Logger,
  ) {
    this.secret = derive(config.API_TOKEN, 'berth egress credential v1');
    const admin = derive(config.API_TOKEN, 'berth egress admin v1');
    const providers = config.egress.providers.map(({ name, url, api, key }) => ({ name, url, api, key }));
    this.env = {
      EGRESS_SECRETS: this.secret,
      EGRESS_ADMIN_TOKEN: admin,
      EGRESS_PROVIDERS_JSON: JSON.stringify(providers),
      LOG_LEVEL: config.LOG_LEVEL,
      ...(Object.keys(config.prices).length ? { EGRESS_PRICES_JSON: JSON.stringify(config.prices) } : {}),
      ...(config.egress.extraCa ? { EGRESS_EXTRA_CA: config.egress.extraCa } : {}),
    };
    this.current = this.specFor(null);
  }

  /** The proxy this berth runs: its current version. */
  get spec(): EgressProxySpec {
    return this.current;
  }

  /**
   * A change of image (its id: a rebuilt `berth:local` too), providers, keys, networks or secret
   * is a new version: it starts beside the old one, which stays until the last attempt using it
   * has ended. The proxy runs the image by its id, so what runs is what the version names.
   */
  private specFor(imageId: string | null): EgressProxySpec {
    const { config, env } = this;
    const version = createHash('sha256')
      .update(JSON.stringify({ image: config.WORKER_IMAGE, imageId, env, networks: config.EGRESS_NETWORKS, memory: config.EGRESS_MEMORY }))
      .digest('hex')
      .slice(0, 10);
    const name = `berth-egress-${config.QUEUE_NAME}-${version}`;
    return {
      name,
      image: imageId ?? config.WORKER_IMAGE,
      command: ['node', '/app/dist/egress/main.js'],
      uid: 10001,
      gid: 10001,
      env,
      labels: { [LABEL.egressProxy]: config.QUEUE_NAME, [LABEL.egressVersion]: version },
      networks: config.EGRESS_NETWORKS,
      memoryBytes: config.EGRESS_MEMORY,
      socketVolume: name,
      stateVolume: `${name}-state`,
    };
  }

  /** Brings the spec in line with the worker image as the engine has it now. */
  async refresh(): Promise<EgressProxySpec> {
    const imageId = await this.launcher.imageId(this.config.WORKER_IMAGE).catch(() => null);
    if (imageId !== this.imageId) {
      this.imageId = imageId;
      this.current = this.specFor(imageId);
    }
    return this.current;
  }

  get enabled(): boolean {
    return this.config.EGRESS === 'proxy';
  }

  /** Makes sure this version's proxy runs (creating or restarting it), and retires old ones no attempt uses. */
  async ensure(): Promise<void> {
    if (!this.enabled) return;
    await this.refresh();
    const { created } = await this.launcher.ensureEgressProxy(this.spec);
    if (created) this.logger.info({ proxy: this.spec.name }, 'started the egress proxy');
    for (const name of await this.launcher.retireEgressProxies(this.config.QUEUE_NAME, this.spec.name))
      this.logger.info({ proxy: name }, 'retired an egress proxy no attempt uses any more');
  }

  /** The attempt's allowlist, from operator config only: GitHub, EGRESS_HOSTS, the kind's extras; and its kind's budget, less what earlier attempts spent. */
  grant(task: WorkerTask, spentBefore: Spend = NOTHING_SPENT, now = Date.now()): Grant {
    const budget = budgetFor(this.config.budgets, task.kind);
    const github = [this.config.GITHUB_SERVER_URL, this.config.WORKER_GITHUB_API_URL ?? this.config.GITHUB_API_URL].map((url) => new URL(url));
    const ports = new Set(this.config.EGRESS_PORTS.map(Number));
    for (const url of github) ports.add(Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
    return {
      attempt: `${task.id}#${task.attempt}`,
      kind: task.kind,
      hosts: [
        ...new Set([
          ...github.map((url) => url.hostname.toLowerCase()),
          ...this.config.EGRESS_HOSTS.map((h) => h.toLowerCase()),
          ...(this.config.egress.hostsByKind[task.kind] ?? []),
        ]),
      ],
      ports: [...ports],
      allowPrivate: this.config.EGRESS_ALLOW_PRIVATE,
      providers: this.config.egress.providers.map((p) => p.name),
      expiresAt: now + this.config.TASK_TIMEOUT + CREDENTIAL_SLACK_MS,
      ...(budget ? { budget: { ...budget, spentTokens: spentBefore.tokens, spentUsd: spentBefore.usd } } : {}),
    };
  }

  /** Whether the proxy `proxyName` found `attempt`'s budget spent (asked at most every few seconds for all attempts). */
  async overBudget(proxyName: string, attempt: string): Promise<boolean> {
    let cached = this.overBudgetSeen.get(proxyName);
    if (!cached || Date.now() - cached.at > OVER_BUDGET_CACHE_MS) {
      cached = {
        at: Date.now(),
        attempts: this.launcher
          .egressOverBudget(proxyName)
          .then((list) => new Set(list))
          .catch(() => new Set<string>()),
      };
      this.overBudgetSeen.set(proxyName, cached);
    }
    return (await cached.attempts).has(attempt);
  }

  /**
   * The worker's side: its credential as the proxy's password and as each provider's API key (the
   * proxy swaps it for the real one), base URLs on its own loopback, and the proxy's socket volume.
   */
  forAttempt(task: WorkerTask, spentBefore: Spend = NOTHING_SPENT): WorkloadEgress {
    const credential = signGrant(this.grant(task, spentBefore), this.secret);
    const local = `http://127.0.0.1:${RELAY_PORT}`;
    const proxy = `http://berth:${credential}@127.0.0.1:${RELAY_PORT}`;
    const env: Record<string, string> = {
      BERTH_EGRESS_SOCKET: EGRESS_SOCKET,
      BERTH_EGRESS_PORT: String(RELAY_PORT),
      NO_PROXY: 'localhost,127.0.0.1',
      no_proxy: 'localhost,127.0.0.1',
      // Node's own fetch and http honour HTTPS_PROXY only when asked to.
      NODE_USE_ENV_PROXY: '1',
    };
    const secrets: Record<string, string> = {
      HTTPS_PROXY: proxy,
      https_proxy: proxy,
      HTTP_PROXY: proxy,
      http_proxy: proxy,
      BERTH_EGRESS_CREDENTIAL: credential,
    };
    if (Object.hasOwn(this.config.setupCommands, task.kind)) {
      // The setup phase's own, wider grant; the worker gives it back at the proxy when the setup ends.
      const grant = this.grant(task, spentBefore);
      const setup = signGrant(
        { ...grant, phase: 'setup', hosts: [...new Set([...grant.hosts, ...this.config.EGRESS_SETUP_HOSTS.map((h) => h.toLowerCase())])] },
        this.secret,
      );
      secrets.BERTH_EGRESS_SETUP_CREDENTIAL = setup;
    }
    for (const provider of this.config.egress.providers) {
      const base = `${local}/model/${provider.name}`;
      env[`BERTH_MODEL_${provider.name.toUpperCase().replace(/-/g, '_')}_URL`] = base;
      if (provider.name === 'anthropic' || (provider.api === 'anthropic' && !env.ANTHROPIC_BASE_URL)) {
        env.ANTHROPIC_BASE_URL = base;
        secrets.ANTHROPIC_API_KEY = credential;
      }
      if (provider.name === 'openai' || (provider.api === 'openai' && !env.OPENAI_BASE_URL)) {
        env.OPENAI_BASE_URL = base;
        secrets.OPENAI_API_KEY = credential;
      }
    }
    return {
      env,
      secrets,
      volumes: [{ source: this.spec.socketVolume, target: EGRESS_SOCKET_DIR, readOnly: true }],
      labels: { [LABEL.egress]: this.spec.name },
    };
  }

  /** The proxy's record of an attempt; null when there is none or the proxy cannot be asked. */
  async record(proxyName: string, attempt: string, since?: number): Promise<AttemptEgress | null> {
    try {
      return (await this.launcher.egressRecord(proxyName, attempt, since)) as AttemptEgress | null;
    } catch (error) {
      this.logger.warn({ err: error, proxy: proxyName, attempt }, "could not read the attempt's egress record");
      return null;
    }
  }
}

function derive(key: string, purpose: string): string {
  return createHmac('sha256', key).update(purpose).digest('base64url');
}
