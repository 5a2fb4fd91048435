// What a user would write with the packages berth itself uses, as a fairer ingest baseline than the
// bare route: Fastify + @octokit/webhooks (verifyAndReceive: HMAC, parse, dispatch) + BullMQ
// Queue.add keyed by the delivery id (so a redelivery is not a second job). Plain JS, no loader.
// Env: PORT, REDIS_URL, WEBHOOK_SECRET, QUEUE_NAME. Prints {"msg":"listening"} when ready.
import Fastify from 'fastify';
import { Webhooks } from '@octokit/webhooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const queue = new Queue(process.env.QUEUE_NAME, { connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }) });
const webhooks = new Webhooks({ secret: process.env.WEBHOOK_SECRET });
webhooks.on('pull_request.review_requested', async ({ id, payload }) => {
  await queue.add(
    'review',
    { repo: payload.repository.full_name, number: payload.pull_request.number, sha: payload.pull_request.head.sha },
    { jobId: `gh-${id}`, attempts: 3, backoff: { type: 'exponential', delay: 30_000 }, removeOnComplete: { age: 604_800 }, removeOnFail: { age: 604_800 } },
  );
});
const app = Fastify();
app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 25 * 1024 * 1024 }, (_request, body, done) => done(null, body));
app.post('/webhooks/github', async (request, reply) => {
  try {
    await webhooks.verifyAndReceive({
      id: request.headers['x-github-delivery'],
      name: request.headers['x-github-event'],
      payload: request.body,
      signature: request.headers['x-hub-signature-256'],
    });
  } catch (error) {
    return reply.status(error.status ?? 400).send({ error: String(error.message).slice(0, 200) });
  }
  return reply.status(202).send({ ok: true });
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
console.log(JSON.stringify({ msg: 'listening', time: Date.now() }));
