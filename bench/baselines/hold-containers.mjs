// The least a dispatcher holds per running worker, as a memory baseline (plain JS, dockerode only):
// create + start COUNT containers from the spec file, then keep a wait() and a following log
// stream open on each, as berth does. Prints {"msg":"running","count":N}; SIGTERM removes them.
//   node bench/baselines/hold-containers.mjs SPEC.json COUNT
import { readFileSync } from 'node:fs';
import Dockerode from 'dockerode';

const [specFile, countArg] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specFile, 'utf8'));
const count = Number(countArg);
const docker = new Dockerode();
await docker.ping();
const containers = [];
for (let i = 0; i < count; i++) {
  const container = await docker.createContainer({ ...spec, name: `${spec.name}-${i}` });
  await container.start();
  containers.push(container);
  container.wait().catch(() => {});
  const logs = await container.logs({ follow: true, stdout: true, stderr: true });
  logs.on('data', () => {});
}
console.log(JSON.stringify({ msg: 'running', count, time: Date.now() }));
process.on('SIGTERM', async () => {
  await Promise.all(containers.map((c) => c.remove({ force: true }).catch(() => {})));
  process.exit(0);
});
setInterval(() => {}, 60_000);
