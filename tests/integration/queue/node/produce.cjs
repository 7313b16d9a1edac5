// Add jobs with Node BullMQ 5 and print their ids as JSON (portside Q12 test).
// Usage: node produce.cjs <redis-url> <prefix> <queue>
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

const [url, prefix, name] = process.argv.slice(2);

(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  const first = await queue.add(
    'node-retry',
    { n: 1, nested: { list: [1, 2, 3], text: 'é' } },
    { jobId: 'node-1', attempts: 2, backoff: { type: 'fixed', delay: 50 } },
  );
  const plain = await queue.add('node-plain', { n: 2 });
  const urgent = await queue.add('node-priority', { n: 3 }, { priority: 1 });
  const bulk = await queue.addBulk([
    { name: 'node-bulk', data: { n: 4 } },
    { name: 'node-bulk', data: { n: 5 }, opts: { removeOnComplete: true } },
  ]);
  await queue.close();
  await connection.quit();
  const ids = [first, plain, urgent, ...bulk].map((job) => ({ id: job.id, name: job.name }));
  console.log(JSON.stringify(ids));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
