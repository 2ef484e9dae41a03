// RequestLog drops a line below the module logger's level before Powertools works it out: what is
// written must be what Powertools alone would write, with the request's keys, at every level, and
// a level changed after the RequestLog was made (log sampling does it per invocation) must count.
import { Logger } from '@aws-lambda-powertools/logger'
import { RequestLog } from '../../../functions/shared/request-telemetry'

// The JSON lines `write` printed, to stdout or stderr (Powertools writes warnings and errors there).
function printed(write: () => void): Array<Record<string, unknown>> {
  const chunks: string[] = []
  const capture = (chunk: string | Uint8Array) => {
    chunks.push(String(chunk))
    return true
  }
  const spies = [
    jest.spyOn(process.stdout, 'write').mockImplementation(capture),
    jest.spyOn(process.stderr, 'write').mockImplementation(capture),
  ]
  try {
    write()
  } finally {
    for (const spy of spies) spy.mockRestore()
  }
  return chunks
    .flatMap((c) => c.split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const everyLevel = (log: RequestLog) => {
  log.debug('a debug line', { n: 1 })
  log.info('an info line', { n: 2 })
  log.warn('a warning', { n: 3 })
  log.error('an error', { n: 4 })
}

describe('RequestLog', () => {
  it.each([
    ['DEBUG', ['a debug line', 'an info line', 'a warning', 'an error']],
    ['INFO', ['an info line', 'a warning', 'an error']],
    ['WARN', ['a warning', 'an error']],
    ['ERROR', ['an error']],
    ['SILENT', []],
  ] as const)(
    'at %s writes the lines of that level and above, each with the request’s keys',
    (level, expected) => {
      const logger = new Logger({ serviceName: 'request-log-test', logLevel: level })
      const lines = printed(() => everyLevel(new RequestLog(logger, { function_request_id: 'req-1' })))
      expect(lines.map((l) => l.message)).toEqual(expected)
      for (const line of lines) expect(line.function_request_id).toBe('req-1')
      expect(lines.map((l) => l.n)).toEqual(
        expected.map((m) => ({ 'a debug line': 1, 'an info line': 2, 'a warning': 3, 'an error': 4 })[m]),
      )
    },
  )

  it.each([
    ['DEBUG', [1, 1, 1, 1]],
    ['INFO', [0, 1, 1, 1]],
    ['WARN', [0, 0, 1, 1]],
    ['ERROR', [0, 0, 0, 1]],
    ['SILENT', [0, 0, 0, 0]],
  ] as const)(
    'at %s hands Powertools no line its level leaves out (the work this saves)',
    (level, expected) => {
      const logger = new Logger({ serviceName: 'request-log-test', logLevel: level })
      const calls = (['debug', 'info', 'warn', 'error'] as const).map((name) => jest.spyOn(logger, name))
      printed(() => everyLevel(new RequestLog(logger, {})))
      expect(calls.map((spy) => spy.mock.calls.length)).toEqual(expected)
    },
  )

  it('follows the logger’s level as it is when each line is written', () => {
    const logger = new Logger({ serviceName: 'request-log-test', logLevel: 'WARN' })
    const log = new RequestLog(logger, { tenantId: 'acme' })
    expect(printed(() => log.info('before'))).toEqual([])
    logger.setLogLevel('DEBUG')
    const lines = printed(() => {
      log.debug('after')
      log.info('after too')
    })
    expect(lines.map((l) => [l.message, l.tenantId])).toEqual([
      ['after', 'acme'],
      ['after too', 'acme'],
    ])
  })

  it('adds appended keys to every later line', () => {
    const logger = new Logger({ serviceName: 'request-log-test', logLevel: 'INFO' })
    const log = new RequestLog(logger, { function_request_id: 'req-2' })
    log.appendKeys({ tenantId: 'globex' })
    const [line] = printed(() => log.info('served'))
    expect(line).toMatchObject({ message: 'served', function_request_id: 'req-2', tenantId: 'globex' })
  })
})
