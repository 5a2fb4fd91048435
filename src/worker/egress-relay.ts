import { existsSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** How long a worker waits for its node's proxy before giving the attempt back as a temporary failure. */
export const PROXY_WAIT_MS = 30_000;

/** Whether the proxy's socket is there, waiting up to `waitMs` for it. */
export async function proxyListening(socketPath: string, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  while (!existsSync(socketPath)) {
    if (Date.now() > until) return false;
    await delay(200);
  }
  return true;
}

/**
 * A worker behind berth's proxy has no network at all, only loopback: this relays each connection
 * to 127.0.0.1:<port> to the proxy's Unix socket (a volume mounted read-only), so agents and git
 * use an ordinary HTTPS_PROXY. Nothing else leaves the worker: there is no route to leave by.
 */
export async function startEgressRelay(socketPath: string, port: number): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  // The relay must not keep the worker alive once the agent is done.
  server.unref();
  return server;
}
