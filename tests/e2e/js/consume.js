// Consumes with kafkajs consumers in one group, committing each record's offset after it is read,
// until `count` records have arrived; prints what each member was assigned and read, and the
// group's committed offsets afterwards.
//
//   node consume.js '{"brokers": [...], "topic": "t", "groupId": "g", "count": 10,
//                     "members": 2, "partitions": 4, "produce": [{"value": "v", "partition": 0}]}'
//
// With "produce", the records are produced (by a kafkajs producer) only once the members hold
// disjoint assignments that cover all `partitions`, so every member gets its share.
//
// Prints {"members": [{"memberId", "assignment": [...], "records": [...]}],
// "committed": [{partition, offset}...]}.
'use strict'

const { Partitioners } = require('kafkajs')
const { client, run, recordOf, waitFor } = require('./common')

run(async options => {
  const kafka = client(options, 'kafkajs-consume')
  const memberCount = options.members || 1
  const partitions = options.partitions || 1
  const joinTimeoutMs = options.joinTimeoutMs || 20000
  const members = []
  let total = 0
  for (let i = 0; i < memberCount; i++) {
    const consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 10000,
      rebalanceTimeout: 10000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    })
    const member = { consumer, memberId: null, assignment: null, records: [] }
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      member.memberId = payload.memberId
      member.assignment = (payload.memberAssignment[options.topic] || []).slice().sort((a, b) => a - b)
    })
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      process.stderr.write(`member ${i} crashed: ${payload.error && payload.error.stack}\n`)
    })
    members.push(member)
  }
  for (const member of members) {
    await member.consumer.connect()
    await member.consumer.subscribe({ topics: [options.topic], fromBeginning: true })
    await member.consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        member.records.push(recordOf(topic, partition, message))
        total += 1
        const next = (BigInt(message.offset) + 1n).toString()
        await member.consumer.commitOffsets([{ topic, partition, offset: next }])
      },
    })
  }

  const balanced = () => {
    const owned = members.map(member => member.assignment)
    if (owned.some(assignment => assignment === null || assignment.length === 0)) return false
    const all = owned.flat()
    return all.length === partitions && new Set(all).size === partitions
  }
  await waitFor(balanced, joinTimeoutMs, 'disjoint assignments covering every partition')
  const assignments = members.map(member => member.assignment)

  if (options.produce) {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    await producer.send({ topic: options.topic, acks: -1, messages: options.produce })
    await producer.disconnect()
  }
  await waitFor(() => total >= options.count, options.consumeTimeoutMs || 20000, `${options.count} records`)
  for (const member of members) {
    await member.consumer.disconnect()
  }

  const admin = kafka.admin()
  await admin.connect()
  const [committed] = await admin.fetchOffsets({ groupId: options.groupId, topics: [options.topic] })
  await admin.disconnect()
  return {
    members: members.map((member, i) => ({
      memberId: member.memberId,
      assignment: assignments[i],
      records: member.records,
    })),
    committed: committed.partitions
      .map(({ partition, offset }) => ({ partition, offset }))
      .sort((a, b) => a.partition - b.partition),
  }
})
