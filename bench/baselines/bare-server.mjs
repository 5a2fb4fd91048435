// The least an HTTP front for this job can do, as a baseline (plain JS: no loader overhead).
//   POST /webhooks/github  verify the HMAC over the raw body, LPUSH the body to Redis
//   POST /tasks            parse JSON, BullMQ Queue.add with the same options berth uses
// Env: PORT, REDIS_URL, WEBHOOK_SECRET, QUEUE_NAME. Prints {"msg":"listening"} when ready.
import { createHmac, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';

const redis = new Redis(process.env.REDIS_URL);
const queue = new Queue(process.env.QUEUE_NAME, { connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }) });
const app = Fastify();
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
  if (request.url.startsWith('/webhooks/')) return done(null, body);
  try {
    done(null, JSON.parse(body.toString('utf8')));
  } catch (error) {
    error.statusCode = 400;
    done(error);
  }
});
app.post('/webhooks/github', async (request, reply) => {
  const expected = Buffer.from(`sha256=${createHmac('sha256', process.env.WEBHOOK_SECRET).update(request.body).digest('hex')}`);
  const given = Buffer.from(String(request.headers['x-hub-signature-256'] ?? ''));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply.status(401).send();
  await redis.lpush('bare:deliveries', request.body);
  return reply.status(202).send({ ok: true });
});
app.post('/tasks', async (request, reply) => {
  const job = await queue.add('task', request.body, {
    attempts: 3,
    backoff: { type: 'exponential', delay: 10_000 },
    removeOnComplete: { age: 604_800 },
    removeOnFail: { age: 604_800 },
  });
  return reply.status(201).send({ id: job.id });
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
console.log(JSON.stringify({ msg: 'listening', time: Date.now() }));
