import http from 'node:http';

/**
 * Gives an egress credential back at the proxy, through the relay: `narrow` ends that one
 * credential (the setup phase's wider one, before the agent starts); `end` ends every credential of
 * the attempt (once the agent has exited: nothing of the attempt needs the way out any more). On
 * one engine berth also ends them when it reads the attempt's record; on a swarm, where berth cannot
 * reach the node's proxy, this is how they die before their expiry.
 */
export function giveBackEgress(relay: URL, credential: string, scope: 'narrow' | 'end'): Promise<true | string> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: relay.hostname,
        port: relay.port,
        method: 'POST',
        path: `/_berth/${scope}`,
        headers: { 'proxy-authorization': `Basic ${Buffer.from(`berth:${credential}`).toString('base64')}` },
        timeout: 10_000,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode === 204 ? true : `the proxy answered ${response.statusCode}`);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error) => resolve(error.message));
    request.end();
  });
}
