// Shared by the kafkajs scripts that tests/e2e/test_kafkajs.py runs. Each script takes one JSON
// argument, logs kafkajs's own lines to stderr and prints one JSON line to stdout as its last
// output; it exits non-zero on any error or when its deadline passes, so no run can hang.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

// The argument of the script: {"brokers": ["127.0.0.1:port"], "deadlineMs": ..., ...}.
function args() {
  if (process.argv.length !== 3) {
    throw new Error(`usage: node ${process.argv[1]} '<json>'`)
  }
  return JSON.parse(process.argv[2])
}

// kafkajs's default logger writes to stdout; these lines go to stderr, so stdout holds only the
// result.
function stderrLogger() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  }
}

function client(options, clientId) {
  return new Kafka({
    clientId,
    brokers: options.brokers,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
  })
}

// Runs `main(options)`; prints its result as JSON, or the error to stderr with exit code 1. The
// deadline (options.deadlineMs, default 30 s) ends the process with exit code 2.
function run(main) {
  let options
  try {
    options = args()
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exit(1)
  }
  const deadline = setTimeout(() => {
    process.stderr.write(`deadline of ${options.deadlineMs || 30000} ms passed\n`)
    process.exit(2)
  }, options.deadlineMs || 30000)
  main(options).then(
    result => {
      clearTimeout(deadline)
      process.stdout.write(JSON.stringify(result) + '\n')
      process.exit(0)
    },
    error => {
      process.stderr.write(`failed: ${error && error.stack ? error.stack : error}\n`)
      process.exit(1)
    }
  )
}

// A record as the tests compare it: strings for keys, values and header values (null stays null).
function recordOf(topic, partition, message) {
  const headers = Object.entries(message.headers || {}).map(([key, value]) => [
    key,
    Array.isArray(value) ? value.map(String) : String(value),
  ])
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key === null ? null : message.key.toString(),
    value: message.value === null ? null : message.value.toString(),
    headers,
  }
}

// Resolves when `condition()` holds, checking every 20 ms; rejects after `timeoutMs`.
function waitFor(condition, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const check = () => {
      if (condition()) return resolve()
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`))
      setTimeout(check, 20)
    }
    check()
  })
}

module.exports = { client, run, recordOf, waitFor }
