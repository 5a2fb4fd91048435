import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { z } from 'zod';
import { splitCommandLine } from '../command-line.js';
import { resolveDockerEndpoint, type DockerEndpoint } from '../docker-endpoint.js';
import { SPEND_BUDGET_SETTINGS } from '../spend-budgets.js';
import { loadWebhookRules, type WebhookRules } from '../webhook-rules.js';
import { cidrProblem, hostEntryProblem, parseEgressSettings, type EgressSettings } from './egress.js';
import { splitList } from './fields.js';
import { readSecretFile } from './kind-variables.js';
import { parseKinds, type TokenPermissionsByKind } from './kinds.js';
import { budgetFor, parseBudgets, type Budgets } from './budgets.js';
import type { PriceTable } from '../spend.js';
import { DEFAULT_WORKER_ENTRYPOINT, DEFAULT_WORKER_NETWORK, envSchema } from './schema.js';
import { BERTH_SECRETS, checkBind } from './worker-policy.js';

export type Config = Omit<z.output<typeof envSchema>, 'WORKER_BINDS' | 'CONSUMER_ID'> & {
  WORKER_BINDS: string[];
  CONSUMER_ID: string;
  /** task kind → argv, from AGENT_COMMAND_<KIND> */
  agentCommands: Record<string, string[]>;
  /** task kind → argv of its setup phase, from SETUP_COMMAND_<KIND> */
  setupCommands: Record<string, string[]>;
  /** task kind → the worker token's permissions, from GITHUB_TOKEN_PERMISSIONS_<KIND> (defaults: tokenPermissionsFor). */
  tokenPermissions: TokenPermissionsByKind;
  workerEntrypoint: string[];
  webhookRules: WebhookRules;
  /** PEM text, from GITHUB_APP_PRIVATE_KEY or the file; null when no App is configured. */
  githubAppPrivateKey: string | null;
  /** EGRESS_HOSTS_<KIND>, the model providers with their keys, the proxy's extra CA. */
  egress: EgressSettings;
  /** TASK_BUDGET_TOKENS(_<KIND>), TASK_BUDGET_USD(_<KIND>): per task, across its attempts (budgetFor). */
  budgets: Budgets;
  /** MODEL_PRICES_FILE: USD per million tokens, by model. */
  prices: PriceTable;
  /** TASK_PRIORITY_<KIND>: each kind's start priority level (kindPriority). */
  priorities: Record<string, number>;
  /** DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH as resolved (certificates read) once, here. */
  dockerEndpoint: DockerEndpoint;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`berth: invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Secrets that may come from a file named by `<NAME>_FILE` (the App key has its own handling). */
const SECRET_FILES = ['API_TOKEN', 'GITHUB_WEBHOOK_SECRET', 'GITHUB_WEBHOOK_SECRET_PREVIOUS', 'BOARD_PASSWORD'] as const;

/** Settings whose plain names clash with a user's environment (CHECKOUT=/some/path); BERTH_<NAME> is read first. */
export const PREFIXED_NAMES = new Set(['CHECKOUT', 'HOST', 'PORT']);

/** Parses the environment once; throws a ConfigError listing every problem, never only the first. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const problems: string[] = [];
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) {
    // Names a user's shell commonly has for other things: berth's own prefixed name wins.
    const value = PREFIXED_NAMES.has(key) && env[`BERTH_${key}`] !== undefined ? env[`BERTH_${key}`] : env[key];
    // An empty variable means "not set": compose files often write `FOO=` for optional values.
    raw[key] = value === '' ? undefined : value;
  }
  // Secrets as files (compose `secrets:`, Docker secrets): the value never sits in the environment
  // that `docker inspect` shows. A trailing newline (as `echo > file` writes) is not part of it.
  for (const name of SECRET_FILES) {
    const file = raw[`${name}_FILE`];
    if (!file) continue;
    if (raw[name] !== undefined) {
      problems.push(`${name} and ${name}_FILE: set one of them`);
      continue;
    }
    try {
      // An empty file is an unset secret (compose wants every secret file to exist).
      raw[name] = readSecretFile(file);
    } catch (error) {
      problems.push(`${name}_FILE: cannot read ${file} (${(error as Error).message})`);
    }
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.')}: ${issue.message}`);
    }
  }

  const { agentCommands, setupCommands, tokenPermissions, priorities } = parseKinds(env, problems);
  const { budgets, prices } = parseBudgets(env, raw, Object.keys(agentCommands), problems);
  const budgeted = Object.keys(agentCommands).some((kind) => budgetFor(budgets, kind));
  if (parsed.success) {
    const spendBudgets = SPEND_BUDGET_SETTINGS.filter((name) => parsed.data[name] > 0);
    if (spendBudgets.length > 0 && parsed.data.EGRESS !== 'proxy')
      problems.push(`${spendBudgets.join('/')}: budgets are kept from the egress proxy's metering; they need EGRESS=proxy (EGRESS is ${parsed.data.EGRESS})`);
    const inUsd = spendBudgets.filter((name) => name.includes('_USD_'));
    if (inUsd.length > 0 && Object.keys(prices).length === 0)
      problems.push(`${inUsd.join('/')}: a budget in USD needs the price table (MODEL_PRICES_FILE); berth has no built-in prices`);
  }
  if (budgeted && parsed.success && parsed.data.EGRESS !== 'proxy')
    problems.push(
      `TASK_BUDGET_TOKENS/TASK_BUDGET_USD: budgets are kept by the egress proxy, which meters every model call; they need EGRESS=proxy (EGRESS is ${parsed.data.EGRESS})`,
    );

  if (parsed.success && parsed.data.API_PRIORITY_MIN > parsed.data.API_PRIORITY_MAX)
    problems.push(`API_PRIORITY_MIN (${parsed.data.API_PRIORITY_MIN}) is above API_PRIORITY_MAX (${parsed.data.API_PRIORITY_MAX})`);

  const entrypoint = splitCommandLine(raw.WORKER_ENTRYPOINT ?? DEFAULT_WORKER_ENTRYPOINT);
  if (!entrypoint.ok) problems.push(`WORKER_ENTRYPOINT: ${entrypoint.error}`);

  const binds = splitList(raw.WORKER_BINDS);
  const workerEnv = splitList(raw.WORKER_ENV);
  for (const bind of binds) {
    const problem = checkBind(bind);
    if (problem) problems.push(`WORKER_BINDS: '${bind}' ${problem}`);
  }
  for (const name of workerEnv) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) problems.push(`WORKER_ENV: '${name}' is not a variable name`);
    else if (name.startsWith('BERTH_') || name === 'GITHUB_TOKEN') problems.push(`WORKER_ENV: '${name}' is set by berth itself`);
    else if (BERTH_SECRETS.test(name)) problems.push(`WORKER_ENV: '${name}' is one of berth's own secrets; workers never get it`);
  }

  let dockerEndpoint: DockerEndpoint | string = 'DOCKER_HOST: not read';
  if (parsed.success) {
    dockerEndpoint = resolveDockerEndpoint(parsed.data);
    if (typeof dockerEndpoint === 'string') problems.push(dockerEndpoint);
    if (parsed.data.LAUNCHER === 'swarm' && parsed.data.WORKER_NETWORK === 'none' && parsed.data.EGRESS === 'open')
      problems.push(
        "WORKER_NETWORK: 'none' is not available to swarm services; leave it unset (berth makes an overlay of its own that no standalone container can join) or name an --internal swarm-scoped network",
      );
  }

  const egress = parseEgressSettings(env, splitList(raw.EGRESS_PROVIDERS), Object.keys(agentCommands), raw.EGRESS_CA_FILE, problems);
  for (const host of splitList(raw.EGRESS_HOSTS)) {
    const problem = hostEntryProblem(host.toLowerCase());
    if (problem) problems.push(`EGRESS_HOSTS: ${problem}`);
  }
  for (const range of splitList(raw.EGRESS_ALLOW_PRIVATE)) {
    const problem = cidrProblem(range);
    if (problem) problems.push(`EGRESS_ALLOW_PRIVATE: ${problem}`);
  }
  for (const port of splitList(raw.EGRESS_PORTS))
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65_535) problems.push(`EGRESS_PORTS: '${port}' is not a port number`);
  if (parsed.success && parsed.data.EGRESS === 'proxy') {
    if (raw.WORKER_NETWORK && raw.WORKER_NETWORK !== 'none' && raw.WORKER_NETWORK !== DEFAULT_WORKER_NETWORK)
      problems.push(
        `WORKER_NETWORK: EGRESS=proxy gives workers no network (the proxy is their only way out); leave WORKER_NETWORK unset, or set EGRESS=open to use '${raw.WORKER_NETWORK}'`,
      );
    for (const name of workerEnv)
      if (egress.providers.some((p) => p.key === env[name]))
        problems.push(`WORKER_ENV: '${name}' holds a model provider's key; with EGRESS=proxy the key stays with the proxy (remove it from WORKER_ENV)`);
  }

  const webhook = loadWebhookRules(raw.WEBHOOK_RULES_FILE);
  if ('problems' in webhook) problems.push(...webhook.problems);
  else
    for (const schedule of webhook.rules.schedules)
      if (!Object.hasOwn(agentCommands, schedule.kind))
        problems.push(`WEBHOOK_RULES_FILE: schedule '${schedule.id}': no AGENT_COMMAND_${schedule.kind.toUpperCase()} for the kind '${schedule.kind}'`);

  let githubAppPrivateKey: string | null = null;
  if (raw.GITHUB_APP_PRIVATE_KEY_FILE) {
    try {
      githubAppPrivateKey = readFileSync(raw.GITHUB_APP_PRIVATE_KEY_FILE, 'utf8').trim() || null;
    } catch (error) {
      problems.push(`GITHUB_APP_PRIVATE_KEY_FILE: cannot read ${raw.GITHUB_APP_PRIVATE_KEY_FILE} (${(error as Error).message})`);
    }
  } else if (raw.GITHUB_APP_PRIVATE_KEY) {
    githubAppPrivateKey = raw.GITHUB_APP_PRIVATE_KEY.replace(/\\n/g, '\n');
  }
  if (githubAppPrivateKey !== null && !githubAppPrivateKey.includes('PRIVATE KEY-----')) problems.push('GITHUB_APP_PRIVATE_KEY: not a PEM private key');
  if ((githubAppPrivateKey !== null) !== (raw.GITHUB_APP_ID !== undefined))
    problems.push('GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY(_FILE): set both or neither');

  if (problems.length > 0 || !parsed.success || !entrypoint.ok || 'problems' in webhook || typeof dockerEndpoint === 'string') throw new ConfigError(problems);
  return {
    ...parsed.data,
    CONSUMER_ID: parsed.data.CONSUMER_ID ?? hostname(),
    agentCommands,
    setupCommands,
    tokenPermissions,
    workerEntrypoint: entrypoint.argv,
    webhookRules: webhook.rules,
    githubAppPrivateKey,
    egress,
    budgets,
    prices,
    dockerEndpoint,
    priorities,
  };
}

/** For a process's main(): parse, or print every problem and exit non-zero. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}
