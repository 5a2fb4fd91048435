// test-resources: extra-engines
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerLauncher, dockerClient } from '../../src/consumer/launcher/docker.js';
import { resolveDockerEndpoint } from '../../src/core/docker-endpoint.js';
import { freePort } from '../support/redis.js';
import { startSecondEngine, type SecondEngine } from '../support/second-engine.js';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as `docker` expects them. */
function makeCertificates(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', `/CN=${name}-ca`);
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-out',
    'server-cert.pem',
    '-days',
    '1',
    '-extfile',
    'server.ext',
  );
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'client.csr', '-subj', '/CN=berth');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-out',
    'cert.pem',
    '-days',
    '1',
    '-extfile',
    'client.ext',
  );
}

describe('a remote engine only over TLS (a real dockerd with --tlsverify)', () => {
  let engine: SecondEngine;
  let dir: string;
  let host: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
    makeCertificates(join(dir, 'good'), 'berth');
    makeCertificates(join(dir, 'other'), 'stranger');
    const port = await freePort();
    host = `tcp://127.0.0.1:${port}`;
    const certs = join(dir, 'good');
    engine = await startSecondEngine(
      [],
      [
        '--host',
        host,
        '--tlsverify',
        '--tlscacert',
        join(certs, 'ca.pem'),
        '--tlscert',
        join(certs, 'server-cert.pem'),
        '--tlskey',
        join(certs, 'server-key.pem'),
      ],
    );
  });
  after(async () => {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client as berth makes one from its settings (resolved as the config does). */
  const engineAt = (settings: Parameters<typeof resolveDockerEndpoint>[0]) => {
    const endpoint = resolveDockerEndpoint(settings);
    if (typeof endpoint === 'string') throw new Error(endpoint);
    return dockerClient(endpoint);
  };

  it('DOCKER_TLS_VERIFY with DOCKER_CERT_PATH reaches it; plain TCP and a stranger CA do not', async () => {
    const launcher = new DockerLauncher(engineAt({ DOCKER_HOST: host, DOCKER_TLS_VERIFY: true, DOCKER_CERT_PATH: join(dir, 'good') }));
    await launcher.ping();
    assert.match(await launcher.engineId(), /^[0-9a-f-]{36}$/);
    await assert.rejects(engineAt({ DOCKER_HOST: host }).ping(), 'plain HTTP to a TLS engine is refused by the engine');
    await assert.rejects(
      engineAt({ DOCKER_HOST: host, DOCKER_TLS_VERIFY: true, DOCKER_CERT_PATH: join(dir, 'other') }).ping(),
      'a server signed by another CA is not trusted',
    );
  });
});
