// Run a flow's jobs with Node BullMQ 5 workers on two queues, then read it back with
// FlowProducer.getFlow, printing what Node saw as JSON (portside Q12 test).
// Usage: node flow_consume.cjs <redis-url> <prefix> <parent-queue> <child-queue> <root-id> <count>
// A job whose data has `children` returns its children's values (job.getChildrenValues());
// any other returns {by: 'node', n}. Every job logs one line with job.log.
const { FlowProducer, Worker } = require('bullmq');
const IORedis = require('ioredis');

const [url, prefix, parentQueue, childQueue, rootId, count] = process.argv.slice(2);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const seen = {};
let finished = 0;
let done;
const allDone = new Promise((resolve) => (done = resolve));

async function processor(job) {
  await job.log(`node ran ${job.name}`);
  if (job.data.children) {
    return { by: 'node', children: await job.getChildrenValues() };
  }
  return { by: 'node', n: job.data.n };
}

const workers = [parentQueue, childQueue].map((name) => {
  const worker = new Worker(name, processor, { connection, prefix });
  worker.on('completed', (job) => {
    seen[job.id] = { queue: name, name: job.name, returnvalue: job.returnvalue };
    finished += 1;
    if (finished === Number(count)) done();
  });
  worker.on('failed', (job, err) => console.error('job failed', job && job.id, err));
  worker.on('error', (err) => console.error('worker error', err));
  return worker;
});

function shape(node) {
  return {
    id: node.job.id,
    name: node.job.name,
    queue: node.job.queueName,
    returnvalue: node.job.returnvalue,
    children: (node.children || []).filter(Boolean).map(shape),
  };
}

(async () => {
  await allDone;
  await Promise.all(workers.map((worker) => worker.close()));
  const flows = new FlowProducer({ connection, prefix });
  const tree = await flows.getFlow({ id: rootId, queueName: parentQueue });
  await flows.close();
  await connection.quit();
  console.log(JSON.stringify({ jobs: seen, tree: shape(tree) }));
  process.exit(0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
