import { z } from 'zod';
import { readSecretsFile } from '../core/secrets-file.js';
import { priceTableSchema } from '../core/spend.js';

/** Where the proxy listens inside its container, and where workers find it (a volume mounted read-only). */
export const EGRESS_SOCKET_DIR = '/run/berth-egress';
export const EGRESS_SOCKET = `${EGRESS_SOCKET_DIR}/proxy.sock`;
export const EGRESS_STATE_DIR = '/var/lib/berth-egress';

const providerSchema = z.object({ name: z.string(), url: z.string().url(), key: z.string().min(1), api: z.enum(['anthropic', 'openai']) });

/**
 * The egress proxy's own settings, as berth sets them on its container (never by hand: berth
 * derives the secrets and passes the operator's providers). One schema, parsed once at start.
 */
export const egressEnvSchema = z.object({
  EGRESS_SECRETS: z
    .string()
    .min(32)
    .transform((text) => text.split(',').filter(Boolean))
    .describe('Secrets attempt credentials are signed with, the current one first.'),
  EGRESS_ADMIN_TOKEN: z.string().min(32).describe("What berth presents to read an attempt's record."),
  EGRESS_PROVIDERS_JSON: z
    .string()
    .default('[]')
    .transform((text, ctx) => {
      try {
        return z.array(providerSchema).parse(JSON.parse(text));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `not a list of providers: ${(error as Error).message}` });
        return z.NEVER;
      }
    }),
  EGRESS_PRICES_JSON: z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      try {
        return priceTableSchema.parse(JSON.parse(text));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `not a price table: ${(error as Error).message}` });
        return z.NEVER;
      }
    })
    .describe("The operator's model prices (MODEL_PRICES_FILE), for USD budgets."),
  EGRESS_EXTRA_CA: z.string().optional(),
  EGRESS_SOCKET: z.string().default(EGRESS_SOCKET),
  /** A TCP port as well (benchmarks, tests on loopback); 0: none. */
  EGRESS_LISTEN_PORT: z.coerce.number().int().min(0).max(65_535).default(0),
  EGRESS_LISTEN_HOST: z.string().default('127.0.0.1'),
  EGRESS_STATE_DIR: z.string().default(EGRESS_STATE_DIR),
  EGRESS_JOURNAL: z
    .enum(['0', '1'])
    .default('0')
    .transform((v) => v === '1')
    .describe("1: print each change of an attempt's record as a log line (a swarm, where berth reads the proxy only through its logs)."),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type EgressConfig = z.output<typeof egressEnvSchema>;

/**
 * The settings from the environment and, where the backend hands them over as a file (a swarm
 * secret: a service's Env is readable by anyone who can inspect it), from EGRESS_ENV_FILE.
 */
export function parseEgressConfig(env: NodeJS.ProcessEnv): EgressConfig {
  let fromFile: Record<string, string>;
  try {
    fromFile = readSecretsFile(env.EGRESS_ENV_FILE);
  } catch (error) {
    throw new Error(`berth-egress: cannot read EGRESS_ENV_FILE ${env.EGRESS_ENV_FILE}: ${(error as Error).message}`);
  }
  const parsed = egressEnvSchema.safeParse({ ...env, ...fromFile });
  if (!parsed.success)
    throw new Error(`berth-egress: invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
