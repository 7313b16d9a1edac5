// Add a flow with Node BullMQ 5's FlowProducer and print its job ids as JSON (portside Q12
// test). Usage: node flow_produce.cjs <redis-url> <prefix> <parent-queue> <child-queue>
// The root (parent queue) waits for two children and a child whose failure is ignored
// (ignoreDependencyOnFailure); one child waits for a grandchild on the parent queue.
// Node also writes a log line to the root with Queue.addJobLog.
const { FlowProducer, Queue } = require('bullmq');
const IORedis = require('ioredis');

const [url, prefix, parentQueue, childQueue] = process.argv.slice(2);

function ids(node) {
  return {
    id: node.job.id,
    name: node.job.name,
    children: (node.children || []).map(ids),
  };
}

(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const flows = new FlowProducer({ connection, prefix });
  const tree = await flows.add({
    name: 'node-root',
    queueName: parentQueue,
    data: { children: true },
    children: [
      { name: 'node-a', queueName: childQueue, data: { n: 1 } },
      {
        name: 'node-b',
        queueName: childQueue,
        data: { children: true },
        children: [{ name: 'node-grandchild', queueName: parentQueue, data: { n: 3 } }],
      },
      {
        name: 'node-bad',
        queueName: childQueue,
        data: { fail: true },
        opts: { attempts: 1, ignoreDependencyOnFailure: true },
      },
    ],
  });
  const queue = new Queue(parentQueue, { connection, prefix });
  await queue.addJobLog(tree.job.id, 'node wrote this');
  await queue.close();
  await flows.close();
  await connection.quit();
  console.log(JSON.stringify(ids(tree)));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
