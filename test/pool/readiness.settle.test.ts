// The wait a connection that may have crossed a freeze makes before hand-out: one full poll phase
// after it was asked for, shared by whoever asks before its first immediate has run.
import { stat } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { settleOnePollPhase } from '../../lib/pool/readiness'

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('settleOnePollPhase', () => {
  it('is shared by callers in the same phase, and begun afresh once its first immediate has run', async () => {
    const first = settleOnePollPhase()
    expect(settleOnePollPhase()).toBe(first)
    // An immediate queued now runs after the settle's first one.
    await immediate()
    const second = settleOnePollPhase()
    expect(second).not.toBe(first)
    await Promise.all([first, second])
    // Over: the next caller waits again.
    expect(settleOnePollPhase()).not.toBe(second)
  })

  it('ends after the sockets were read, for a caller who asks from the poll phase while data is waiting', async () => {
    // Data already in the kernel's buffer when the settle is asked for is read before it ends.
    let server: Socket | undefined
    const listening = createServer((s) => {
      server = s
    })
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve))
    const { port } = listening.address() as { port: number }
    const client = connect(port, '127.0.0.1')
    await new Promise<void>((resolve) => client.once('connect', resolve))
    while (server === undefined) await immediate()
    try {
      for (let i = 0; i < 20; i++) {
        let read = false
        client.once('data', () => {
          read = true
        })
        // From an I/O callback, as a request the runtime read: the poll phase it runs in is over
        // before the byte below is seen, so an immediate alone would end before it is read.
        await new Promise((resolve) => stat('.', resolve))
        server.write('x')
        // The byte reaches the client's buffer on loopback at once; give the kernel a moment.
        const wait = Date.now() + 5
        while (Date.now() < wait) {}
        await settleOnePollPhase()
        expect(read).toBe(true)
      }
    } finally {
      client.destroy()
      server.destroy()
      await new Promise<void>((resolve) => listening.close(() => resolve()))
    }
  })
})
