// Creates a topic (optional) and produces records with kafkajs; prints what the broker answered.
//
//   node produce.js '{"brokers": [...], "topic": "t", "create": {"partitions": 3},
//                     "messages": [{"key": "k", "value": "v", "partition": 0, "headers": {"h": "1"}}],
//                     "compression": "gzip", "idempotent": true}'
//
// Prints {"created": bool, "sent": [RecordMetadata...], "offsets": [{partition, low, high}...],
// "partitions": [{partitionId, leader}...]}.
'use strict'

const { CompressionTypes, Partitioners } = require('kafkajs')
const { client, run } = require('./common')

run(async options => {
  const kafka = client(options, 'kafkajs-produce')
  const admin = kafka.admin()
  await admin.connect()
  let created = false
  if (options.create) {
    created = await admin.createTopics({
      topics: [{ topic: options.topic, numPartitions: options.create.partitions }],
      waitForLeaders: true,
    })
  }
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: Boolean(options.idempotent),
    maxInFlightRequests: options.idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
  })
  await producer.connect()
  const sent = await producer.send({
    topic: options.topic,
    acks: -1,
    compression: options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
    messages: options.messages,
  })
  await producer.disconnect()
  const offsets = await admin.fetchTopicOffsets(options.topic)
  const metadata = await admin.fetchTopicMetadata({ topics: [options.topic] })
  await admin.disconnect()
  return {
    created,
    sent,
    offsets: offsets
      .map(({ partition, low, high }) => ({ partition, low, high }))
      .sort((a, b) => a.partition - b.partition),
    partitions: metadata.topics[0].partitions
      .map(({ partitionId, leader }) => ({ partitionId, leader }))
      .sort((a, b) => a.partitionId - b.partitionId),
  }
})
