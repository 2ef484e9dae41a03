// Preloaded (node --require) into a process that must not touch the network: every outbound socket
// and DNS look-up is recorded and refused. The record is printed at exit for the test to read.
const net = require('node:net')
const dns = require('node:dns')
const attempts = []
const refuse = (what) => {
  attempts.push(what)
  throw new Error(`network access during load: ${what}`)
}
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  const [first] = args
  refuse(
    `connect ${JSON.stringify(typeof first === 'object' ? { host: first.host, port: first.port, path: first.path } : args.slice(0, 2))}`,
  )
  return connect.apply(this, args)
}
for (const name of ['lookup', 'resolve', 'resolve4', 'resolve6']) {
  dns[name] = (host) => refuse(`dns.${name} ${host}`)
  dns.promises[name] = async (host) => refuse(`dns.promises.${name} ${host}`)
}
process.on('exit', () => {
  process.stdout.write(`\n${JSON.stringify({ networkAttempts: attempts })}\n`)
})
