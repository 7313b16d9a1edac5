// Add jobs with Node BullMQ 5 through an ioredis Cluster client; print their ids as JSON
// (portside S1 test).
// Usage: node cluster_produce.cjs <host:port,host:port,...> <prefix> <queue> <count>
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

const [nodes, prefix, name, count] = process.argv.slice(2);

(async () => {
  const seeds = nodes.split(',').map((address) => {
    const [host, port] = address.split(':');
    return { host, port: Number(port) };
  });
  const connection = new IORedis.Cluster(seeds, { redisOptions: { maxRetriesPerRequest: null } });
  const queue = new Queue(name, { connection, prefix });
  const jobs = [];
  for (let n = 0; n < Number(count); n += 1) {
    jobs.push(await queue.add('node-cluster', { n }, { jobId: `node-${n}` }));
  }
  const bulk = await queue.addBulk([
    { name: 'node-bulk', data: { n: -1 } },
    { name: 'node-bulk', data: { n: -2 }, opts: { priority: 1 } },
  ]);
  await queue.close();
  await connection.quit();
  console.log(JSON.stringify([...jobs, ...bulk].map((job) => ({ id: job.id, name: job.name }))));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
