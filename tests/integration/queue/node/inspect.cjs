// Read jobs back with Node BullMQ 5 and print them as JSON (portside Q12 test).
// Usage: node inspect.cjs <redis-url> <prefix> <queue> <job id>...
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

const [url, prefix, name, ...ids] = process.argv.slice(2);

(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  const out = {};
  for (const id of ids) {
    const job = await queue.getJob(id);
    out[id] = job
      ? {
          state: await job.getState(),
          name: job.name,
          data: job.data,
          returnvalue: job.returnvalue,
          attemptsMade: job.attemptsMade,
          failedReason: job.failedReason || null,
          progress: job.progress,
          opts: job.opts,
          parentKey: job.parentKey || null,
          logs: await queue.getJobLogs(id),
          childrenValues: (await job.getChildrenValues()) || {},
          ignoredFailures: (await job.getIgnoredChildrenFailures()) || {},
        }
      : null;
  }
  const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
  await queue.close();
  await connection.quit();
  console.log(JSON.stringify({ jobs: out, counts }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
