import net from 'node:net';

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
