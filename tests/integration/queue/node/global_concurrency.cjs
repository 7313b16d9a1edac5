// Read (and optionally set) a queue's global concurrency with Node BullMQ 5 (portside Q13).
// Usage: node global_concurrency.cjs <redis-url> <prefix> <queue> [<new cap>]
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

const [url, prefix, name, next] = process.argv.slice(2);

(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  const seen = await queue.getGlobalConcurrency();
  const maxed = await queue.isMaxed();
  if (next !== undefined) {
    await queue.setGlobalConcurrency(Number(next));
  }
  await queue.close();
  await connection.quit();
  console.log(JSON.stringify({ seen, maxed }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
