// Consume `count` jobs with Node BullMQ 5 and print what it saw as JSON (portside Q12 test).
// Usage: node consume.cjs <redis-url> <prefix> <queue> <count>
// Jobs whose data has `failTimes: n` fail their first n attempts. The custom backoff type
// `schedule` (portside's explicit delay lists) is the documented backoffStrategy snippet.
const { Worker } = require('bullmq');
const IORedis = require('ioredis');

const [url, prefix, name, count] = process.argv.slice(2);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const seen = {};
const delays = {};
let finished = 0;

const worker = new Worker(
  name,
  async (job) => {
    const entry = (seen[job.id] = seen[job.id] || { attempts: [] });
    entry.attempts.push(job.attemptsMade + 1);
    if (job.data.failTimes && job.attemptsMade < job.data.failTimes) {
      throw new Error(`planned failure ${job.attemptsMade + 1}`);
    }
    return { by: 'node', seen: job.data };
  },
  {
    connection,
    prefix,
    settings: {
      backoffStrategy: (attemptsMade, type, err, job) => {
        if (type === 'schedule') {
          const list = job.opts.backoff.delays;
          const delay = list[Math.min(attemptsMade, list.length) - 1];
          (delays[job.id] = delays[job.id] || []).push(delay);
          return delay;
        }
        throw new Error(`unknown backoff type ${type}`);
      },
    },
  },
);

async function finish(job) {
  finished += 1;
  seen[job.id] = Object.assign(seen[job.id] || {}, {
    name: job.name,
    data: job.data,
    attemptsMade: job.attemptsMade,
    opts: job.opts,
    returnvalue: job.returnvalue,
    failedReason: job.failedReason || null,
  });
  if (finished === Number(count)) {
    await worker.close();
    await connection.quit();
    console.log(JSON.stringify({ jobs: seen, delays }));
    process.exit(0);
  }
}

worker.on('completed', finish);
worker.on('failed', (job) => {
  if (job && job.attemptsMade >= (job.opts.attempts || 1)) return finish(job);
});
worker.on('error', (err) => console.error('worker error', err));
