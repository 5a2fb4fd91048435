#!/usr/bin/env node
import { chmodSync, rmSync } from 'node:fs';
import closeWithGrace from 'close-with-grace';
import { createLogger } from '../core/logger.js';
import { parseEgressConfig } from './config.js';
import { JOURNAL_MSG } from './journal.js';
import { EgressLedger } from './ledger.js';
import { Revocations } from './revocations.js';
import { createEgressProxy } from './proxy.js';

// What `ps`, `pgrep berth-egress` and `top` show.
process.title = 'berth-egress';

/**
 * Composition root of berth's egress proxy: a long-lived container of its own (same image, this
 * entrypoint) that berth ensures and adopts by name, and never stops on its own shutdown, so an
 * agent's streamed model response outlives a dispatcher's SIGKILL.
 */
const config = parseEgressConfig(process.env);
const logger = createLogger(config.LOG_LEVEL, 'berth-egress');
const ledger = new EgressLedger(
  config.EGRESS_STATE_DIR,
  undefined,
  // Whatever LOG_LEVEL says: berth reads a swarm proxy's records from these lines.
  config.EGRESS_JOURNAL ? (event) => process.stdout.write(`${JSON.stringify({ msg: JOURNAL_MSG, egress: event })}\n`) : undefined,
);
const options = {
  secrets: config.EGRESS_SECRETS,
  adminToken: config.EGRESS_ADMIN_TOKEN,
  providers: config.EGRESS_PROVIDERS_JSON,
  prices: config.EGRESS_PRICES_JSON,
  ledger,
  revocations: new Revocations(config.EGRESS_STATE_DIR),
  logger,
  ...(config.EGRESS_EXTRA_CA ? { extraCa: [config.EGRESS_EXTRA_CA] } : {}),
};
const onSocket = createEgressProxy(options);
// A socket left by the previous run of this container (a crash, a restart) would refuse the listen.
rmSync(config.EGRESS_SOCKET, { force: true });
await new Promise<void>((resolve) => onSocket.listen(config.EGRESS_SOCKET, resolve));
// Workers may run as another uid than the proxy (WORKER_USER): the volume is their only way in.
chmodSync(config.EGRESS_SOCKET, 0o666);
const onPort = config.EGRESS_LISTEN_PORT ? createEgressProxy(options) : null;
if (onPort) await new Promise<void>((resolve) => onPort.listen(config.EGRESS_LISTEN_PORT, config.EGRESS_LISTEN_HOST, resolve));
logger.info(
  { socket: config.EGRESS_SOCKET, port: config.EGRESS_LISTEN_PORT || undefined, providers: config.EGRESS_PROVIDERS_JSON.map((p) => p.name) },
  'egress proxy listening',
);

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'egress proxy shutting down after an error');
  else logger.info({ signal }, 'egress proxy shutting down');
  ledger.flush();
  await new Promise((resolve) => onSocket.close(resolve));
  if (onPort) await new Promise((resolve) => onPort.close(resolve));
});
